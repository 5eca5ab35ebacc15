"""Study 4 on real-format folders (seed layout and two plain folders), and its configuration."""

import numpy as np
import pytest

from astrogen import config, notebook
from astrogen.io.anomaly import (
    ImageFolderError,
    folder_fingerprint,
    load_rating_folder,
    save_images,
    write_image_folder,
)
from astrogen.sims.anomaly import render_sky, render_suite, to_rgb
from astrogen.studies import anomaly as study
from astrogen.studies.anomaly import configuration
from astrogen.studies.anomaly import scoring as sc


def _two_folders(root, n_observed=30, n_simulated=10):
    save_images(
        root / "observed", to_rgb(render_sky(n_observed, np.random.default_rng(0))[0]), "obs"
    )
    compact = render_suite("compact", 1.0, n_simulated, np.random.default_rng(1))[0]
    save_images(root / "simulated", to_rgb(compact), "sim")
    return root


def test_two_plain_folders_load_split_and_rate(tmp_path):
    root = _two_folders(tmp_path / "pair")
    folder = load_rating_folder(root)
    assert folder["layout"] == "plain" and len(folder["observed"]) == 30
    sky = study.real_sky(root, seed=0)
    assert {k: len(v[0]) for k, v in sky.items()} == {"train": 24, "val": 3, "test": 3}
    names = [set(sky[k][1]["file"]) for k in ("train", "val", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    pixels, table = study.rated_images(root)
    assert pixels.shape == (10, 3, 64, 64) and pixels.dtype == np.uint8
    assert table["file"].iloc[0] == "sim_000000.png"
    cfg = notebook.resolve("45_anomaly_scores", "smoke", {"data.source": str(root)})
    stretch = sc.stretch_of(cfg)
    observed = sc.measure(study.real_sky(root, 0)["train"][0], stretch)
    r = sc.rate(cfg, 0, sc.measure(pixels, stretch), observed)
    assert 0 <= r["p_value"] <= 1 and r["n_simulated"] == 10 and r["n_observed"] == 24


def test_the_seed_layout_goes_through_the_same_functions(tmp_path):
    rng = np.random.default_rng(3)
    sets = {"train": rng.random((20, 3, 64, 64)), "test_normal": rng.random((5, 3, 64, 64)),
            "test_abnormal": rng.random((4, 3, 64, 64))}  # fmt: skip
    root = write_image_folder(tmp_path / "seed", sets)
    folder = load_rating_folder(root)
    assert folder["layout"] == "seed" and len(folder["simulated"]) == 4
    assert len(study.rated_images(root)[0]) == 4
    assert {k: len(v[0]) for k, v in study.real_sky(root, 0).items()} == {
        "train": 18,
        "val": 2,
        "test": 5,
    }


def test_clear_errors_for_folders_in_neither_form(tmp_path):
    with pytest.raises(ImageFolderError, match="no such directory"):
        load_rating_folder(tmp_path / "missing")
    (tmp_path / "odd" / "images").mkdir(parents=True)
    with pytest.raises(ImageFolderError, match=r"neither the seed's layout .* nor two plain"):
        load_rating_folder(tmp_path / "odd")
    root = _two_folders(tmp_path / "pair", 8, 2)
    for p in (root / "simulated").iterdir():
        p.unlink()
    with pytest.raises(ImageFolderError, match="simulated: no images"):
        load_rating_folder(root)
    (root / "simulated" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageFolderError, match=r"bad\.png: not a readable"):
        load_rating_folder(root)


def test_a_folder_source_keys_its_artifacts_by_content(tmp_path):
    root = _two_folders(tmp_path / "pair", 8, 2)
    before = folder_fingerprint(root)
    cfg = notebook.resolve("42_anomaly_training", "smoke", {"data.source": str(root)})
    assert study.key(cfg, "ganomaly", 0)["source"] == before
    save_images(root / "observed", np.zeros((1, 3, 64, 64)), "extra")
    assert folder_fingerprint(root) != before


def test_configuration_defaults_profiles_and_targets():
    config.validate_defaults(configuration.Config)
    for profile in config.PROFILES:
        config.resolve(configuration.Config, profile, configuration.PROFILES)
    cfg = notebook.resolve("45_anomaly_scores", "default", {"model.epochs": 5})
    assert cfg.model.epochs == 5 and cfg.data.source is None
    with pytest.raises(config.ConfigError, match=r"n_boot.*ambiguous"):
        notebook.resolve("45_anomaly_scores", "default", {"n_boot": 5})
    names = {t.metric for t in notebook.targets("45_anomaly_scores", "default")}
    for suite in configuration.SUITE_NAMES:
        for m in ("default_score_auroc_s0", "default_score_auroc_s1", "default_score_spearman",
                  "rating_p_s0", "rating_p_s1"):  # fmt: skip
            assert f"{m}_{suite}" in names
    assert "explained_suites" in names
    # the smooth suite is reported with its bound, never asserted, so `full` can pass
    for profile in ("default", "full"):
        for nb in ("43_anomaly_rating", "45_anomaly_scores"):
            smooth = [t for t in notebook.targets(nb, profile) if t.metric.endswith("s1_smooth")]
            assert smooth and all(t.lower is None and t.upper is None for t in smooth)
    for artifact in configuration.ARTIFACTS.values():
        config.artifact_key(cfg, "x", artifact)  # every field an artifact reads exists
