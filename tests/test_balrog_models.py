"""Study-3 models and bookkeeping: gradient penalty, cWGAN-GP checkpointing, calibration, splits."""

import numpy as np
import pandas as pd
import pytest
import torch

from astrogen.config import resolve
from astrogen.models.classifier import expected_calibration_error, fit_classifier, reliability_curve
from astrogen.models.gan import ConditionalWGAN, fit_cwgan_gp, gradient_penalty
from astrogen.studies import balrog as study
from astrogen.studies.balrog.configuration import PROFILES, Config


def test_gradient_penalty_on_critics_with_known_gradients():
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    eps = torch.rand(64, 1)
    # Linear critic a·y: the gradient is a everywhere, so the penalty is (|a| - 1)^2 = 16.
    a = torch.tensor([3.0, 4.0])
    assert gradient_penalty(lambda y: y @ a, real, fake, eps).item() == pytest.approx(16.0)
    # |y|²/2: the gradient at the interpolate ŷ is ŷ itself; with real = fake the penalty is
    # the mean of (|y| - 1)^2.
    gp = gradient_penalty(lambda y: 0.5 * (y**2).sum(1), real, real, eps)
    assert gp.item() == pytest.approx(((real.norm(dim=1) - 1) ** 2).mean().item(), rel=1e-5)


def test_cwgan_gp_keeps_the_generator_with_the_best_validation_score():
    rng = np.random.default_rng(0)
    c, t = rng.normal(size=(500, 2)), rng.normal(size=(500, 1))
    y = t + 0.1 * np.exp(c[:, :1]) * rng.normal(size=(500, 1))
    scores = iter([3.0, 1.0, 2.0, 4.0])
    states = []

    def score(model: ConditionalWGAN) -> float:
        states.append({k: v.clone() for k, v in model.generator.state_dict().items()})
        return next(scores)

    model = fit_cwgan_gp(y, c, t, validation_score=score, width=16, generator_steps=8,
                         eval_every=2, progress=False)  # fmt: skip
    assert model.history["step"] == [2, 4, 6, 8] and model.history["best_step"] == 4
    for k, v in model.generator.state_dict().items():
        torch.testing.assert_close(v, states[1][k])
    out = model.sample(c, t)
    assert out.shape == (500, 1) and np.isfinite(out).all()
    rebuilt = ConditionalWGAN(model.config)
    rebuilt.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(1)
    first = rebuilt.sample(c, t, generator=gen)
    np.testing.assert_allclose(first, model.sample(c, t, generator=gen.manual_seed(1)))


def test_expected_calibration_error_of_calibrated_and_miscalibrated_predictions():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=200_000)
    y = rng.uniform(size=p.size) < p
    assert expected_calibration_error(p, y) < 0.01
    # Reporting p² for events of probability p: the mean gap is E[p - p²] = 1/6.
    assert expected_calibration_error(p**2, y) == pytest.approx(1 / 6, abs=0.01)
    mean_p, freq, counts = reliability_curve(p, y, bins=10)
    assert counts.sum() == p.size and np.all(np.diff(mean_p) > 0)
    np.testing.assert_allclose(freq, mean_p, atol=0.01)


def test_classifier_learns_a_known_probability():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20_000, 1))
    p_true = 1 / (1 + np.exp(-2 * x[:, 0]))
    y = (rng.uniform(size=len(x)) < p_true).astype(int)
    clf = fit_classifier(x, y, hidden=32, layers=2, epochs=30, progress=False)
    assert np.abs(clf.predict_proba(x) - p_true).mean() < 0.03
    with pytest.raises(ValueError, match="only 0 and 1"):
        fit_classifier(x, y + 1, progress=False)


def test_asinh_magnitude_matches_pogson_when_bright_and_stays_finite_when_faint():
    mag = np.array([18.0, 21.0])
    flux = 10 ** (-0.4 * (mag - 30.0))
    np.testing.assert_allclose(study.asinh_mag(flux), mag, atol=1e-3)
    assert np.isfinite(study.asinh_mag(np.array([0.0, -5.0]))).all()
    assert np.all(np.diff(study.asinh_mag(np.linspace(-50, 50, 11))) < 0)


def test_splits_share_neither_galaxies_nor_sky_cells():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "deep_id": rng.integers(0, 2000, 20_000), "ra": rng.uniform(40, 50, 20_000),
        "dec": rng.uniform(-35, -25, 20_000),
    })  # fmt: skip
    split = study.split_labels(frame, seed=0)
    cells = np.floor(frame["ra"] / study.REGION_DEG) * 1000 + np.floor(
        frame["dec"] / study.REGION_DEG
    )
    for key in (frame["deep_id"], cells):
        kept = split != ""
        owners = pd.Series(split[kept]).groupby(key[kept].to_numpy()).nunique()
        assert owners.max() == 1
    assert set(split) == {"train", "val", "test", ""}


def test_a_real_catalogue_goes_through_the_same_pipeline(tmp_path):
    rng = np.random.default_rng(4)
    n = 400
    table = {
        "ID": rng.integers(0, 100, n),
        "RA": rng.uniform(40, 44, n),
        "DEC": rng.uniform(-30, -26, n),
    }
    for b in "riz":
        true = rng.uniform(50, 500, n)
        table[f"TRUE_{b}"] = true
        table[f"FLUX_{b}"] = true + rng.normal(0, 20, n)
        table[f"FWHM_{b}"] = rng.uniform(0.8, 1.2, n)
        table[f"SKY_{b}"] = rng.uniform(1, 2, n)
    table["FLAG"] = rng.integers(0, 2, n)
    pd.DataFrame(table).to_csv(tmp_path / "balrog.csv", index=False)
    columns = {
        "true_flux_columns": {b: f"TRUE_{b}" for b in "riz"},
        "obs_flux_columns": {b: f"FLUX_{b}" for b in "riz"},
        "detected_column": "FLAG",
        "condition_columns": {
            **{f"psf_fwhm_{b}": f"FWHM_{b}" for b in "riz"},
            **{f"sky_sigma_{b}": f"SKY_{b}" for b in "riz"},
        },
        "deep_id_column": "ID",
        "position_columns": ("RA", "DEC"),
    }
    source = {"data.source": str(tmp_path / "balrog.csv"), "data.columns": columns}
    cfg = resolve(Config, "smoke", PROFILES, source)
    frame = study.injections(cfg, 0)
    y, c, t = study.emulator_arrays(frame)
    assert y.shape == (int(table["FLAG"].sum()), 3) and c.shape[1] == 6 and t.shape[1] == 3
    assert set(frame["split"]) <= {"train", "val", "test", ""}
    # the models trained on it are keyed by the file's content, the simulator's artifacts absent
    keys = study.artifact_keys(cfg, 0)
    assert set(keys) == set(study.MODEL_ARTIFACTS)
    fingerprint = keys["cwgan_gp"]["source_file"]
    assert fingerprint["size"] == (tmp_path / "balrog.csv").stat().st_size
    with open(tmp_path / "balrog.csv", "a") as f:
        f.write("\n")
    assert study.artifact_keys(cfg, 0)["cwgan_gp"]["source_file"] != fingerprint
    with pytest.raises(ValueError, match="fixed input need the simulator"):
        study.fixed_input_injections(cfg, 0)
    no_ids = resolve(
        Config, "smoke", PROFILES, {**source, "data.columns": {**columns, "deep_id_column": None}}
    )
    with pytest.raises(ValueError, match="deep_id_column"):
        study.injections(no_ids, 0)
    no_columns = resolve(Config, "smoke", PROFILES, {"data.source": source["data.source"]})
    with pytest.raises(ValueError, match=r"balrog.csv: data.columns must map"):
        study.injections(no_columns, 0)


def test_halves_by_galaxy_keep_each_galaxy_whole_and_take_any_ids():
    ids = np.array([7, 10**15, 7, 3, 10**15, 3, 3])
    half = study.halves_by_galaxy(ids, seed=0)
    for g in np.unique(ids):
        assert len(set(half[ids == g])) == 1
    names = np.array([f"COADD_{i:016d}" for i in ids])  # same order as strings: same split
    np.testing.assert_array_equal(study.halves_by_galaxy(names, seed=0), half)
    many = study.halves_by_galaxy(np.arange(20_000) % 5_000, seed=1)
    assert 0.45 < many.mean() < 0.55


def test_generator_outputs_do_not_depend_on_the_evaluation_chunk():
    unit = {"mean": [0.0] * 3, "std": [1.0] * 3}
    model = ConditionalWGAN({
        "noise_dim": 4, "conditions": 3, "truths": 3, "outputs": 3, "width": 16, "trunk_layers": 2,
        "c_scaler": unit, "t_scaler": unit, "y_scaler": unit,
    })  # fmt: skip
    c, t = np.random.default_rng(0).normal(size=(2, 1000, 3))
    draws = []
    for chunk in (1000, 128, 7):
        torch.manual_seed(1)
        draws.append(model.sample(c, t, batch=600, chunk=chunk))
    assert draws[0].shape == (1000, 3)
    assert np.allclose(draws[0], draws[1], atol=1e-6) and np.allclose(draws[0], draws[2], atol=1e-6)
