"""Throughput of the study-2 building blocks, printed as one table with ratios.

    python benchmarks/bench_clusters.py [--clusters 1000] [--draws 10000] [--threads 2]

Measures, in one run on the same machine: simulations and exact likelihood evaluations per
second, the reference MCMC (effective posterior samples per second), and cINN posterior sampling
(``--draws`` samples for each of ``--clusters`` clusters, the study's default architecture:
12 GLOW blocks, hidden 128) and MAP estimation. The last column compares each way of getting posterior samples
with the exact MCMC.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timing import rate

from astrogen.diagnostics.mcmc import effective_sample_size, importance_resample, sample_ensemble
from astrogen.models.inn import fit_posterior
from astrogen.sims.clusters import BOUNDS, TARGETS, ClusterSimulator
from astrogen.studies.clusters.configuration import Config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    sim = ClusterSimulator()
    theta = sim.sample_prior(100_000, rng)
    x = sim.simulate(theta, rng)

    rows = [
        (
            "simulate",
            "clusters/s",
            rate(lambda: sim.simulate(sim.sample_prior(100_000, rng), rng), 100_000),
        ),
        (
            "exact log-likelihood",
            "evaluations/s",
            rate(lambda: sim.log_likelihood(x, theta), 100_000),
        ),
    ]

    cfg = Config()  # the default profile's reference sampler and cINN
    n_mcmc, walkers, steps = 50, cfg.reference.walkers, 1000
    xb = x[:n_mcmc, None]
    t0 = time.perf_counter()
    prior = sim.sample_latent(n_mcmc * 20_000, rng).reshape(n_mcmc, 20_000, 6)
    init = importance_resample(
        lambda u: sim.log_likelihood(xb, sim.targets(u)), prior, walkers, rng
    )
    chains = sample_ensemble(lambda u: sim.log_posterior_latent(u, xb), init, steps, rng,
                             burn=steps // 3, thin=10, progress=False)  # fmt: skip
    wall = time.perf_counter() - t0
    ess = effective_sample_size(chains.samples).min(axis=1).sum()
    mcmc_rate = ess / wall
    rows.append(("reference MCMC", "eff. samples/s", mcmc_rate))

    est = fit_posterior(
        theta[:2000], x[:2000], bounds=[BOUNDS[k] for k in TARGETS], blocks=cfg.cinn.blocks,
        hidden=cfg.cinn.hidden, clamp=cfg.cinn.clamp, epochs=1, progress=False,
    )  # fmt: skip
    x_eval = x[: args.clusters]
    total = args.clusters * args.draws
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, args.clusters, 100):
            est.sample(args.draws, x_eval[i : i + 100])
    sample_rate = total / (time.perf_counter() - t0)
    rows.append((f"cINN sample ({args.draws} x {args.clusters})", "samples/s", sample_rate))
    with torch.inference_mode():
        map_rate = rate(lambda: est.map_estimate(x_eval[:100], n=1000), 100, 1)
    rows.append(("cINN MAP (1000 draws each)", "clusters/s", map_rate))

    print(f"{'benchmark':36s} {'unit':16s} {'value':>12s} {'vs MCMC':>9s}")
    for name, unit, value in rows:
        ratio = f"{value / mcmc_rate:9.1f}" if unit.endswith("samples/s") else ""
        print(f"{name:36s} {unit:16s} {value:12.4g} {ratio:>9s}")


if __name__ == "__main__":
    main()
