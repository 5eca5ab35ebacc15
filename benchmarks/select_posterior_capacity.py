"""How `fit_posterior`'s default capacity was chosen: held-out NLL on fresh simulations.

    python benchmarks/select_posterior_capacity.py      # needs the sbi-benchmark extras

For each development problem (sbibm's two_moons simulator and study 2's cluster simulator) and
budget, every candidate (GLOW blocks × hidden units) trains with the other budget-adapted
defaults on simulations of seed 123 and is scored by its mean negative log-posterior on 20 000
fresh prior-predictive simulations (seed 456). No sbibm observation or reference posterior is
used: those are the benchmark's test data (benchmarks/bench_sbi.py) and are only ever scored.
A choice per problem by validation NLL instead was tried and not adopted
(benchmarks/select_posterior_capacity_rule.py).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from astrogen.models.inn import fit_posterior
from astrogen.sims.clusters import ClusterSimulator

CANDIDATES = ((4, 64), (8, 64), (12, 64), (12, 128), (8, 96))
GRID = (("two_moons", 300), ("clusters", 300), ("two_moons", 1_000), ("clusters", 1_000),
        ("two_moons", 10_000))  # fmt: skip


def simulations(problem: str, n: int, seed: int):
    """(θ, x, prior) of ``n`` prior-predictive simulations."""
    if problem == "two_moons":
        import sbibm

        task = sbibm.get_task("two_moons")
        prior = task.get_prior_dist()
        torch.manual_seed(seed)
        theta = prior.sample((n,))
        return theta.double().numpy(), task.get_simulator()(theta).double().numpy(), prior
    sim = ClusterSimulator()
    rng = np.random.default_rng(seed)
    theta = sim.sample_prior(n, rng)
    return theta, sim.simulate(theta, rng), None


def main() -> None:
    torch.set_num_threads(2)
    print("| problem | simulations | blocks × hidden | held-out NLL [nats] | train [s] |")
    print("|---|---|---|---|---|")
    for problem, n in GRID:
        theta, x, prior = simulations(problem, n, 123)
        theta_test, x_test, _ = simulations(problem, 20_000, 456)
        for blocks, hidden in CANDIDATES:
            start = time.perf_counter()
            est = fit_posterior(theta, x, prior=prior, blocks=blocks, hidden=hidden, seed=1,
                                progress=False)  # fmt: skip
            with torch.no_grad():
                nll = -est.log_prob(theta_test, x_test).mean().item()
            wall = time.perf_counter() - start
            print(f"| {problem} | {n} | {blocks} × {hidden} | {nll:.3f} | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main()
