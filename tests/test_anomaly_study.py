"""Study 4 helpers: ratings, size–magnitude residuals, the real-folder sky."""

import numpy as np
import pandas as pd
import pytest

from astrogen.io.anomaly import write_image_folder
from astrogen.sims.anomaly import render_suite
from astrogen.studies import anomaly as study


def test_auroc_and_rating_on_known_distributions():
    rng = np.random.default_rng(0)
    sky, same, shifted = rng.normal(size=2000), rng.normal(size=2000), rng.normal(3, 1, 2000)
    assert study.auroc(sky, same) == pytest.approx(0.5, abs=0.03)
    assert study.auroc(sky, shifted) == pytest.approx(0.983, abs=0.01)  # Φ(3/√2)
    assert study.two_sided_auroc(sky, -shifted) == pytest.approx(0.983, abs=0.01)
    r = study.rating(sky, rng.normal(size=2000), shifted, n_boot=200, seed=0)
    assert r["auroc_lo"] < r["auroc"] < r["auroc_hi"]
    assert r["mean_score_lo"] < r["mean_score"] < r["mean_score_hi"]
    assert r["mean_score"] > 0.95
    assert study.rating(sky, rng.normal(size=2000), same, 200, 0)["mean_score"] == pytest.approx(
        0.5, abs=0.03
    )


def test_size_magnitude_residuals_remove_the_relation():
    rng = np.random.default_rng(1)
    mag = rng.uniform(14, 17.7, 500)
    table = pd.DataFrame({"mag": mag, "r50": 10 ** (0.3 - 0.2 * (mag - 16))})
    c = study.size_magnitude_fit(table)
    np.testing.assert_allclose(c, [0.3, -0.2], atol=1e-10)
    shrunk = table.assign(r50=table["r50"] * 0.4)
    np.testing.assert_allclose(study.size_residual(shrunk, c), np.log10(0.4), atol=1e-10)


def test_pixels_round_trip_and_network_range():
    rng = np.random.default_rng(2)
    images = rng.normal(0, 0.05, (3, 3, 64, 64)).astype(np.float32)
    pixels = study.to_pixels(images)
    assert pixels.dtype == np.uint8
    x = study.to_network(pixels)
    assert x.min() >= -1 and x.max() <= 1 and x.dtype == np.float32


def test_real_sky_from_a_seed_layout_folder(tmp_path):
    rng = np.random.default_rng(3)
    sets = {"train": rng.random((20, 3, 64, 64)), "test_normal": rng.random((5, 3, 64, 64))}
    write_image_folder(tmp_path / "sdss", sets)
    sky = study.real_sky(tmp_path / "sdss", seed=0)
    assert {k: len(v[0]) for k, v in sky.items()} == {"train": 18, "val": 2, "test": 5}
    assert sky["train"][0].dtype == np.uint8 and "file" in sky["test"][1]
    assert not set(sky["train"][1]["file"]) & set(sky["val"][1]["file"])
    only_train = tmp_path / "no_test"
    write_image_folder(only_train, {"train": sets["train"]})
    with pytest.raises(ValueError, match=r"0\.normal: no held-out observed images"):
        study.real_sky(only_train, seed=0)


def test_changed_by_defect_counts_exactly_the_images_a_defect_touches():
    changed = study.changed_by_defect("smooth", 120, [3, 45])
    _, truth = render_suite("smooth", 1.0, 120, np.random.default_rng([3, 45]))
    structured = ((truth["n_arms"] > 0) | (truth["n_clumps"] > 0)).to_numpy()
    assert 0 < structured.sum() < len(structured)  # both kinds occur, so the test has teeth
    np.testing.assert_array_equal(changed, structured)
    assert study.changed_by_defect("compact", 20, [3, 46]).all()


def test_referee_table_reports_auroc_changed_fraction_and_bound():
    rng = np.random.default_rng(0)
    arrays = {
        "half__sky": rng.normal(size=400), "half__suite": rng.normal(1.5, 1, 400),
        "half__changed": np.arange(400) % 2 == 0,
        "null__sky": rng.normal(size=400), "null__suite": rng.normal(size=400),
    }  # fmt: skip
    table = study.referee_table(arrays, n_boot=200, seed=0)
    half, null = table.loc["half"], table.loc["null"]
    assert half["changed_fraction"] == 0.5 and half["auroc_bound"] == 0.875  # 1 − ½²/2
    assert half["changed_fraction_err"] == pytest.approx(np.sqrt(0.25 / 400))
    assert half["referee_auroc"] == pytest.approx(0.856, abs=0.03)  # Φ(1.5/√2)
    assert half["referee_auroc_lo"] < half["referee_auroc"] < half["referee_auroc_hi"]
    assert np.isnan(null["auroc_bound"]) and null["referee_auroc"] == pytest.approx(0.5, abs=0.07)


def test_the_tables_bound_is_what_the_best_score_reaches():
    # Half of each population is shared; the changed half of the sky sits far below and the
    # changed half of the suite far above: TV = f = ½, and ranking by value is the best score.
    rng = np.random.default_rng(1)
    n = 20_000
    shared = rng.normal(size=(2, n))
    changed = rng.random((2, n)) < 0.5
    arrays = {
        "tv__sky": np.where(changed[0], shared[0] - 20, shared[0]),
        "tv__suite": np.where(changed[1], shared[1] + 20, shared[1]),
        "tv__changed": changed[1],
    }
    row = study.referee_table(arrays, n_boot=20, seed=0).loc["tv"]
    assert row["changed_fraction"] == pytest.approx(0.5, abs=0.01)
    assert row["referee_auroc"] == pytest.approx(row["auroc_bound"], abs=0.01)
