"""Study-5 pipeline pieces: flows trained side by side in worker processes."""

import torch

from astrogen import config, paths
from astrogen.studies import galforge as study
from astrogen.studies.galforge.configuration import PROFILES, Config


def _tiny() -> Config:
    return config.resolve(Config, "smoke", PROFILES, {"data.n_galaxies": 10, "data.stars_max": 800})


def test_flows_trained_in_workers_equal_flows_trained_one_after_another(tmp_path, monkeypatch):
    cfg = _tiny()
    specs = [
        {"seed": 0, "family": "maf"},
        {"seed": 0, "family": "nice"},
        {"seed": 1, "family": "maf", "use_latent": False, "tuned_on": 0},
    ]
    trained = {}
    for threads in (2, 1):  # two workers, then one flow after another in this process
        monkeypatch.setattr(paths, "DATA", tmp_path / f"threads{threads}")
        monkeypatch.setenv("ASTROGEN_THREADS", str(threads))
        torch.manual_seed(0)
        trained[threads] = study.flows_for(cfg, specs, progress=False)
        # what the workers stored is what this process finds: nothing trains a second time
        again = study.flows_for(cfg, specs, progress=False)
        for (_, first), (_, second) in zip(trained[threads], again, strict=True):
            assert first["wall_s"] == second["wall_s"]
    for (a, rec_a), (b, rec_b) in zip(trained[2], trained[1], strict=True):
        assert rec_a["lr"] == rec_b["lr"] and rec_a["conditions"] == rec_b["conditions"]
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
