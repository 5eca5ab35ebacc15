"""Study-1 pipeline pieces: ensemble training in worker processes."""

import numpy as np
import pytest
import torch

from astrogen import paths
from astrogen.sims.hernquist import HernquistSphere, add_multiplicative_noise
from astrogen.sims.plummer import PlummerSphere
from astrogen.studies import hernquist as study


def test_members_trained_in_workers_equal_members_trained_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    pos, vel = HernquistSphere(anisotropy="beta_half").sample(3000, np.random.default_rng(0))
    settings = study.FlowSettings("maf", members=2, epochs=2, batch_size=512, lr=1e-3,
                                  transforms=2, hidden=16)  # fmt: skip
    torch.manual_seed(123)
    parallel, records = study.fit_ensemble(pos, vel, settings, seed=0, name="parallel",
                                           data_key={"name": "tiny-1"}, workers=2, progress=False)  # fmt: skip
    after_parallel = torch.rand(3)  # loading the members must leave the caller's RNG alone
    torch.manual_seed(123)
    serial, _ = study.fit_ensemble(pos, vel, settings, seed=0, name="serial",
                                   data_key={"name": "tiny-2"}, workers=1, progress=False)  # fmt: skip
    torch.testing.assert_close(torch.rand(3), after_parallel, rtol=0, atol=0)
    assert len(records) == 2 and all(r["wall_s"] > 0 for r in records)
    for a, b in zip(parallel.members, serial.members, strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    x = torch.from_numpy(np.hstack([pos[:50], vel[:50]]))
    torch.testing.assert_close(parallel.log_prob(x), serial.log_prob(x), rtol=0, atol=0)


def test_a_catalogues_content_is_its_cache_key(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    pos, vel = HernquistSphere().sample(2000, np.random.default_rng(1))
    settings = study.FlowSettings("maf", members=1, epochs=1, batch_size=512, lr=1e-3,
                                  transforms=1, hidden=8)  # fmt: skip
    _, first = study.fit_ensemble(pos, vel, settings, seed=0, name="a", progress=False)
    _, again = study.fit_ensemble(pos.copy(), vel.copy(), settings, seed=0, name="a",
                                  progress=False)  # fmt: skip
    assert again[0]["params"] == first[0]["params"]  # same content: loaded, not retrained
    assert again[0]["wall_s"] == first[0]["wall_s"]
    moved = pos.copy()
    moved[0, 0] *= 1.0000001
    _, changed = study.fit_ensemble(moved, vel, settings, seed=0, name="a", progress=False)
    assert changed[0]["params"]["data"] != first[0]["params"]["data"]
    off = study.PhaseSpaceMaps(inner_power=None, anisotropy=0.3)
    _, other = study.fit_ensemble(pos, vel, settings, seed=0, maps=off, progress=False)
    assert other[0]["params"]["maps"] == {"inner_power": None, "anisotropy": 0.3}


def test_the_maps_follow_the_measured_system_or_the_users_setting():
    rng = np.random.default_rng(2)
    cusp = HernquistSphere(anisotropy="beta_half").sample(200_000, rng)
    core = PlummerSphere().sample(200_000, rng)
    q_cusp, beta_cusp = study.PhaseSpaceMaps().resolve(*cusp)
    q_core, beta_core = study.PhaseSpaceMaps().resolve(*core)
    assert q_core == 1.0  # a core: the cusp map leaves the centre alone
    assert 0.6 < q_cusp < 0.8  # Hernquist's ρ ∝ 1/r cusp: q → 2/3
    assert beta_cusp == pytest.approx(0.5, abs=0.03) and beta_core == pytest.approx(0, abs=0.03)
    assert study.PhaseSpaceMaps(inner_power=None, anisotropy=None).resolve(*cusp) == (1.0, 0.0)
    assert study.PhaseSpaceMaps(inner_power=0.5, anisotropy=0.25).resolve(*core) == (0.5, 0.25)
    with pytest.raises(ValueError, match="inner_power"):
        study.PhaseSpaceMaps(inner_power=1.5).resolve(*core)
    chain = study.phase_space_bijector(*core)
    assert float(chain.bijectors[1].inner_power) == 1.0


def test_measured_anisotropy_and_core_agree_with_the_truth_of_every_simulated_set():
    # artifact_keys lists the members' keys from the true anisotropy before any catalogue exists;
    # training uses the measured profile. At the smoke size (2·10⁴ stars) both must agree.
    from astrogen import config
    from astrogen.studies.hernquist import configuration

    cfg = config.resolve(configuration.Config, "smoke", configuration.PROFILES)
    rng = np.random.default_rng(3)
    for name, spec in study.DATASETS.items():
        pos, vel = study.sphere(name, cfg.data.r_max).sample(cfg.data.n_stars, rng)
        if spec.noise:
            pos, vel = add_multiplicative_noise(pos, vel, spec.noise, rng)
        profile = study.beta_profile(pos, vel)
        assert profile.anisotropic == (spec.anisotropy != "isotropic"), (name, profile.beta)
        assert study.has_core(pos) == (spec.system == "plummer"), name
