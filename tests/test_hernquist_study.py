"""Study-1 pipeline pieces: ensemble training in worker processes."""

import numpy as np
import torch

from astrogen import paths
from astrogen.sims.hernquist import HernquistSphere
from astrogen.studies import hernquist as study


def test_members_trained_in_workers_equal_members_trained_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    pos, vel = HernquistSphere(anisotropy="beta_half").sample(3000, np.random.default_rng(0))
    settings = dict(
        data_params={"name": "tiny"}, family="maf", members=2, epochs=2, batch_size=512,
        lr=1e-3, transforms=2, hidden=16, seed=0, progress=False,
    )  # fmt: skip
    torch.manual_seed(123)
    parallel, records = study.fit_ensemble("parallel", pos, vel, workers=2, **settings)
    after_parallel = torch.rand(3)  # loading the members must leave the caller's RNG alone
    torch.manual_seed(123)
    serial, _ = study.fit_ensemble("serial", pos, vel, workers=1, **settings)
    torch.testing.assert_close(torch.rand(3), after_parallel, rtol=0, atol=0)
    assert len(records) == 2 and all(r["wall_s"] > 0 for r in records)
    for a, b in zip(parallel.members, serial.members, strict=True):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    x = torch.from_numpy(np.hstack([pos[:50], vel[:50]]))
    torch.testing.assert_close(parallel.log_prob(x), serial.log_prob(x), rtol=0, atol=0)
