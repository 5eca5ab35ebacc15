"""Throughput of the study-1 building blocks, printed as one table with ratios.

    python benchmarks/bench_hernquist.py [--stars 200000] [--threads 2] [--ensemble-stars 1000000]

Measures, in one run on the same machine: exact sampling (stars/s), flow training (samples/s),
log-density and log-density + phase-space gradient evaluation (points/s), and CBE acceleration
solves (positions/s), for the MAF and NSF families with notebook 12's default architecture; and
ensemble training of two members side by side (one thread each, as notebook 12 trains them)
against one after another on all threads. Ratios: NSF rows relative to MAF, "side by side"
relative to "one after another".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import rate

from astrogen import paths
from astrogen.dynamics import cbe_accelerations, neighbour_velocities, phase_space_gradients
from astrogen.models.bijectors import RadialLogCompression
from astrogen.models.flows import fit_density
from astrogen.sims.hernquist import HernquistSphere
from astrogen.studies.hernquist import FlowSettings, fit_ensemble
from astrogen.studies.hernquist.configuration import FlowConfig


def ensemble_training_rates(
    pos: np.ndarray, vel: np.ndarray, arch: dict, members: int, epochs: int
) -> tuple[float, float]:
    """Samples/s of training ``members`` flows one after another on all threads, and of
    :func:`fit_ensemble` training them side by side (one process and thread each), as notebook
    12 does; wall time includes starting the worker processes."""
    x = torch.from_numpy(np.hstack([pos, vel]))
    samples = members * epochs * 0.9 * len(x)
    settings = {"family": "maf", "epochs": epochs, "batch_size": 4096, "lr": 5e-3}
    start = time.perf_counter()
    for k in range(members):
        fit_density(
            x, bijector=RadialLogCompression(6, 1e20), transforms=arch["transforms"],
            hidden=(arch["hidden"],) * 2, flow_kwargs={"randperm": False}, seed=k,
            progress=False, **settings,
        )  # fmt: skip
    serial = samples / (time.perf_counter() - start)
    paths.DATA = Path(tempfile.mkdtemp())  # keep the project's checkpoint store untouched
    start = time.perf_counter()
    fit_ensemble(
        pos, vel, FlowSettings(members=members, **arch, **settings), seed=0, name="bench",
        progress=False,
    )  # fmt: skip
    return serial, samples / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stars", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ensemble-stars", type=int, default=1_000_000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    flows = FlowConfig()  # the default profile's architecture (notebook 12)
    arch = {"transforms": flows.transforms, "hidden": flows.hidden}

    rows: list[tuple[str, str, float]] = []
    for aniso in ("isotropic", "beta_half"):
        sphere = HernquistSphere(anisotropy=aniso)
        rows.append(
            (
                f"sample {aniso}",
                "stars/s",
                rate(lambda s=sphere: s.sample(args.stars, rng), args.stars, 1),
            )
        )

    sphere = HernquistSphere()
    pos, vel = sphere.sample(args.stars, rng)
    x = torch.from_numpy(np.hstack([pos, vel]))
    queries = 1e20 * rng.normal(size=(32, 3))
    velocities = neighbour_velocities(pos, vel, queries, 512)
    points = x[:50_000]
    for family in ("maf", "nsf"):
        est = fit_density(
            x,
            family=family,
            bijector=RadialLogCompression(6, 1e20),
            epochs=1,
            batch_size=4096,
            transforms=arch["transforms"],
            hidden=(arch["hidden"],) * 2,
            flow_kwargs={"randperm": False},
            progress=False,
        )
        train_rate = 0.9 * len(x) / est.history.wall_s
        with torch.inference_mode():
            lp_rate = rate(lambda e=est: e.log_prob(points), len(points))
        grad_rate = rate(
            lambda e=est: phase_space_gradients(e.log_prob, points[:, :3], points[:, 3:]),
            len(points),
        )
        cbe_rate = rate(
            lambda e=est: cbe_accelerations(e.log_prob, queries, velocities), len(queries), 2
        )
        rows += [
            (f"train {family}", "samples/s", train_rate),
            (f"log_prob {family}", "points/s", lp_rate),
            (f"log_prob+grad {family}", "points/s", grad_rate),
            (f"CBE solve {family} (K=512)", "positions/s", cbe_rate),
        ]

    big_pos, big_vel = sphere.sample(args.ensemble_stars, rng)
    serial, parallel = ensemble_training_rates(big_pos, big_vel, arch, 2, flows.epochs)
    rows += [
        ("2 maf members one after another", "samples/s", serial),
        ("2 maf members side by side", "samples/s", parallel),
    ]

    by_name = {name: value for name, _, value in rows}
    print(f"{'benchmark':34s} {'unit':12s} {'value':>12s} {'ratio':>8s}")
    for name, unit, value in rows:
        ref_name = name.replace("nsf", "maf").replace("side by side", "one after another")
        ratio = f"{value / by_name[ref_name]:8.2f}" if ref_name != name else ""
        print(f"{name:34s} {unit:12s} {value:12.4g} {ratio:>8s}")
    g = by_name["log_prob+grad maf"] / by_name["log_prob maf"]
    print(f"\ngradient overhead (MAF): log_prob+grad / log_prob throughput = {g:.2f}")


if __name__ == "__main__":
    main()
