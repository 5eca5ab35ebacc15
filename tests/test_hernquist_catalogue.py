"""Study 1 on a user's catalogue in the seed's format, with and without an analytic truth."""

import json

import numpy as np
import pytest

from astrogen import config, paths
from astrogen.io.hernquist import save_phase_space_npz
from astrogen.sims.plummer import PlummerSphere
from astrogen.studies import hernquist as study
from astrogen.studies.hernquist import configuration

NOTEBOOKS = ["12_hernquist_flows", "13_hernquist_accelerations"]


def _metrics(name: str) -> dict:
    return json.loads((paths.metrics_dir("smoke") / f"{name}.json").read_text())


def test_notebooks_run_on_a_catalogue_with_and_without_truth(tmp_path, run_smoke_notebooks):
    model = PlummerSphere()
    pos, vel = model.sample(20_000, np.random.default_rng(11))
    path = tmp_path / "cored.npz"
    save_phase_space_npz(path, pos, vel)
    run_smoke_notebooks(NOTEBOOKS, overrides={"data.source": str(path)})
    # without truth: what needs none, under <notebook>_catalogue, and nothing that needs a truth
    flows, accel = (_metrics(f"{n}_catalogue") for n in NOTEBOOKS)
    assert np.isfinite(flows["nll_catalogue_ensemble"])
    assert not any(k.startswith("kl_") for k in flows)
    assert 0 < accel["member_spread_catalogue"] < 1
    assert not any("err" in k for k in accel)
    truth = {"model": "plummer", "mass": 1e10, "scale_radius": 5.0}
    run_smoke_notebooks(NOTEBOOKS, overrides={"data.source": str(path), "data.truth": truth})
    flows, accel = (_metrics(f"{n}_catalogue_truth") for n in NOTEBOOKS)
    assert 0 <= flows["kl_catalogue_ensemble"] < 2
    assert np.isfinite(flows["nll_catalogue_exact"])
    assert 0 <= accel["median_err_catalogue"] < 1


@pytest.mark.bad_input
def test_a_truth_names_a_model_with_positive_parameters():
    hq = study.truth_model(
        {"model": "hernquist", "mass": 2e10, "scale_radius": 3, "anisotropy": "beta_half"}
    )
    assert hq.anisotropy == "beta_half" and hq.scale_radius == pytest.approx(3 * 3.0857e19, 1e-3)
    assert study.truth_model(None) is None
    for spec, message in (
        ({"model": "nfw", "mass": 1, "scale_radius": 1}, r"data.truth.model: expected one of"),
        ({"model": "plummer", "mass": -1, "scale_radius": 1}, r"data.truth.mass: expected a pos"),
        ({"model": "plummer", "mass": 1}, r"data.truth.scale_radius: expected a positive"),
        ({"model": "plummer", "mass": 1, "scale_radius": 1, "rs": 2}, r"unknown key\(s\) \['rs'\]"),
        ({"model": "plummer", "mass": 1, "scale_radius": 1, "anisotropy": "beta_half"},
         r"data.truth: the Plummer sphere has only"),
        ("plummer", r"data.truth: expected None or a mapping"),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            study.truth_model(spec)


@pytest.mark.bad_input
def test_a_small_catalogue_is_refused_naming_the_file(tmp_path):
    pos, vel = PlummerSphere().sample(50, np.random.default_rng(0))
    path = tmp_path / "tiny.npz"
    save_phase_space_npz(path, pos, vel)
    cfg = config.resolve(
        configuration.Config, "smoke", configuration.PROFILES, {"data.source": str(path)}
    )
    assert study.dataset_names(cfg) == (study.CATALOGUE,)
    with pytest.raises(ValueError, match=r"tiny\.npz: 50 stars leave fewer than 100"):
        study.dataset(study.CATALOGUE, cfg, 0)
