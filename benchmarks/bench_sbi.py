"""`fit_posterior` against sbi's NPE on the sbibm benchmark, in one run on the same simulations.

    make benchmark-sbi        # installs the pinned benchmark-only extras, then runs this
    python benchmarks/bench_sbi.py [--tasks two_moons gaussian_linear_uniform]
        [--budgets 1000 10000 100000] [--observations 10] [--threads 2]

sbibm's protocol (Lueckmann et al. 2021): for each task and simulation budget, one table of
(θ, x) drawn from the task's prior and simulator trains every method; each method then draws
10 000 posterior samples for each of sbibm's 10 observations, and sbibm's C2ST (a 5-fold
cross-validated MLP classifier) scores them against the task's reference posterior samples:
0.5 is a perfect posterior, 1.0 a useless one. Both methods run with their defaults:
``fit_posterior(theta, x, prior=prior)`` and ``sbi.inference.NPE(prior).train()``; the third
method, ``fit_posterior_logit``, is fit_posterior with the prior's box built into the flow by a
logit (``support="logit"``, its default before rejection sampling replaced it).

Every finished cell is written at once to ``--out`` (JSON), so an interrupted run resumes where
it stopped; the table printed at the end holds every method, the published NPE numbers of the
sbibm paper and the training times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from astrogen import store
from astrogen.models.inn import fit_posterior

# sbibm paper (Lueckmann et al. 2021, fig. 2), NPE's mean C2ST over the 10 observations.
PUBLISHED_NPE = {
    "two_moons": {1_000: 0.725, 10_000: 0.606, 100_000: 0.542},
    "gaussian_linear_uniform": {1_000: 0.696, 10_000: 0.553, 100_000: 0.509},
}
METHODS = ("fit_posterior", "fit_posterior_logit", "sbi_npe")


def train(method: str, prior, theta: torch.Tensor, x: torch.Tensor, seed: int):
    """A sampler ``x_obs -> (10 000, D) draws`` trained with the method's defaults."""
    torch.manual_seed(seed)
    if method.startswith("fit_posterior"):
        support = "logit" if method == "fit_posterior_logit" else "reject"
        est = fit_posterior(theta, x, prior=prior, support=support, seed=seed, progress=False)
        return lambda obs, n: est.sample(n, obs).float()
    from sbi.inference import NPE
    from torch.utils.tensorboard import SummaryWriter

    # sbi logs to ./sbi-logs unless given a writer: keep its logs out of the working tree
    writer = SummaryWriter(tempfile.mkdtemp(prefix="sbi-logs-"))
    inference = NPE(prior=prior, show_progress_bars=False, summary_writer=writer)
    inference.append_simulations(theta, x).train()
    posterior = inference.build_posterior()
    return lambda obs, n: posterior.sample((n,), x=obs, show_progress_bars=False)


def simulations(task_name: str, budget: int, seed: int):
    """``(task, prior, theta, x)``: ``budget`` prior-predictive simulations of an sbibm task."""
    import sbibm

    task = sbibm.get_task(task_name)
    prior = task.get_prior_dist()
    torch.manual_seed(seed)  # the same simulations for every method
    theta = prior.sample((budget,))
    return task, prior, theta, task.get_simulator()(theta)


def c2st_per_observation(task, sample, args) -> list[float]:
    """sbibm's C2ST of ``sample(x_obs, n)`` against the reference posterior, per observation."""
    from sbibm.metrics import c2st

    accuracies = []
    for i in range(1, args.observations + 1):
        torch.manual_seed(args.seed + i)
        draws = sample(task.get_observation(i), args.samples)
        reference = task.get_reference_posterior_samples(i)[: args.samples]
        accuracies.append(float(c2st(reference, draws, seed=args.seed)))
    return accuracies


def run_cell(task_name: str, budget: int, method: str, args) -> dict:
    """Train one method on one budget and score it on every observation."""
    task, prior, theta, x = simulations(task_name, budget, args.seed)
    start = time.perf_counter()
    sample = train(method, prior, theta, x, args.seed)
    train_s = time.perf_counter() - start
    accuracies = c2st_per_observation(task, sample, args)
    return {"c2st": accuracies, "c2st_mean": float(np.mean(accuracies)), "train_s": train_s}


def table(results: dict) -> str:
    """Markdown table: mean C2ST of both methods beside the published NPE, and training times."""
    lines = [
        "| task | simulations | fit_posterior C2ST | fit_posterior, logit C2ST | sbi NPE C2ST "
        "| published NPE | fit_posterior train [s] | logit train [s] | sbi NPE train [s] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, budgets in PUBLISHED_NPE.items():
        for budget, published in budgets.items():
            cells = [results.get(f"{task}/{budget}/{m}") for m in METHODS]
            if not any(cells):
                continue
            acc = [f"{c['c2st_mean']:.3f}" if c else "–" for c in cells]
            wall = [f"{c['train_s']:.0f}" if c else "–" for c in cells]
            lines.append(f"| {task} | {budget} | {' | '.join(acc)} | {published} "
                         f"| {' | '.join(wall)} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", nargs="+", default=list(PUBLISHED_NPE))
    ap.add_argument("--budgets", nargs="+", type=int, default=[1_000, 10_000, 100_000])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--observations", type=int, default=10)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sbi.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    cells = [(t, b, m) for b in args.budgets for t in args.tasks for m in args.methods]
    with threadpool_limits(args.threads):
        for task, budget, method in tqdm(cells, desc="sbibm"):
            key = f"{task}/{budget}/{method}"
            if key in results and results[key]["observations"] == args.observations:
                continue
            cell = run_cell(task, budget, method, args)
            results[key] = {**cell, "observations": args.observations, "seed": args.seed,
                            "samples": args.samples}  # fmt: skip
            args.out.parent.mkdir(parents=True, exist_ok=True)
            store.write_json(args.out, results)
            tqdm.write(f"{key}: C2ST {cell['c2st_mean']:.3f}, trained in {cell['train_s']:.0f} s")
    print(table(results))


if __name__ == "__main__":
    main()
