"""Sampling throughput of the study-5 flow families, as one table with ratios.

    python benchmarks/bench_galforge.py [--stars 1000000] [--threads 2]

Samples ``--stars`` stars of one galaxy (one condition vector) from each flow family at the
default architecture, and from the exact mock-galaxy sampler for comparison, on the CPU. Speed
does not depend on the weights, so one-epoch flows of the default size are timed. A family whose
rate on 10⁴ stars projects ``--stars`` beyond a minute (SOSPF inverts its polynomial numerically)
is reported at that rate. The issue's target: 10⁶ stars of one galaxy in ≤ 10 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import rate

from astrogen import profiles
from astrogen.bijectors import BoundedLogit
from astrogen.flows import fit_density
from astrogen.sims import galforge as sim
from astrogen.studies import galforge as study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stars", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    P = profiles.resolve("53_galforge_flows", "default")
    galaxy = sim.sample_galaxies(1, np.random.default_rng(0)).iloc[0]
    x = sim.sample_stars(galaxy, 2000, np.random.default_rng(1))
    n_context = len(study.condition_names(P, use_latent=True))
    context = np.random.default_rng(2).normal(size=(len(x), n_context))
    rows = [("exact mock sampler", rate(
        lambda: sim.sample_stars(galaxy, args.stars, np.random.default_rng(3)), args.stars, 1))]  # fmt: skip
    for family in study.FAMILIES:
        est = fit_density(
            x, context, family, bijector=BoundedLogit(study.PHYSICAL_BOUNDS), epochs=1,
            transforms=P["flow_transforms"], hidden=(P["flow_hidden"],) * 2, progress=False,
        )  # fmt: skip
        c = torch.as_tensor(context[0])

        def draw(n: int, est=est, c=c) -> None:
            with torch.no_grad():
                est.sample(n, c)

        probe = rate(lambda d=draw: d(10_000), 10_000, repeats=1)
        if args.stars / probe > 60:
            rows.append((f"flow: {family} (10^4 probe)", probe))
        else:
            rows.append((f"flow: {family}", rate(lambda d=draw: d(args.stars), args.stars, 1)))
    print(f"{'sampler':24s} {'stars/s':>12s} {'s per 10^6':>11s} {'vs exact':>9s}")
    for name, value in rows:
        print(f"{name:24s} {value:12.3g} {1e6 / value:11.2f} {value / rows[0][1]:9.2f}")


if __name__ == "__main__":
    main()
