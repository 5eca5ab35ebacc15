"""Throughput of the study-3 injection pipeline and its emulators, as one table with ratios.

    python benchmarks/bench_balrog.py [--injections 4000] [--emulated 500000] [--threads 2]

Measures, in one run on the same machine: mini-Balrog injections per second (render, noise,
neighbours, ``sep`` detection and Kron photometry), and galaxies per second emulated by the
cWGAN-GP (default architecture) and the conditional spline flow, on the CPU. Speed does not
depend on the weights, so the emulators are short-trained on the injections measured here. The
last column is the speed-up per galaxy over the injection pipeline.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import rate

from astrogen.models.flows import fit_density
from astrogen.models.gan import fit_cwgan_gp
from astrogen.sims.balrog import run_injections
from astrogen.studies import balrog as study
from astrogen.studies.balrog.configuration import Config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--injections", type=int, default=4000)
    ap.add_argument("--emulated", type=int, default=500_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Config()  # the default profile

    frame = None

    def injections() -> None:
        nonlocal frame
        frame = run_injections(args.injections, seed=1, progress=False)

    inj_rate = rate(injections, args.injections, repeats=2)
    y, c, t = study.emulator_arrays(study.with_derived_columns(frame))
    gan = fit_cwgan_gp(
        y, c, t, validation_score=lambda m: 0.0, noise_dim=cfg.gan.noise_dim, width=cfg.gan.width,
        trunk_layers=cfg.gan.trunk_layers, generator_steps=2, eval_every=2, progress=False,
    )  # fmt: skip
    flow = fit_density(
        torch.as_tensor(y), torch.as_tensor(np.concatenate([c, t], 1)), family="nsf",
        transforms=cfg.flow.transforms, hidden=(cfg.flow.hidden,) * 2, epochs=1, progress=False,
    )  # fmt: skip
    reps = -(-args.emulated // len(c))
    c_big, t_big = np.tile(c, (reps, 1))[: args.emulated], np.tile(t, (reps, 1))[: args.emulated]
    rows = [
        ("mini-Balrog injection", inj_rate),
        ("cWGAN-GP emulation", rate(lambda: study.emulate(gan, c_big, t_big, 0), len(c_big))),
        ("flow emulation", rate(lambda: study.emulate(flow, c_big, t_big, 0), len(c_big))),
    ]
    print(f"{'benchmark':28s} {'galaxies/s':>12s} {'vs injection':>13s}")
    for name, value in rows:
        print(f"{name:28s} {value:12.4g} {value / inj_rate:12.0f}×")


if __name__ == "__main__":
    main()
