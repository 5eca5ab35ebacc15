"""Should `fit_posterior` pick its capacity per problem, by validation NLL?

    python benchmarks/select_posterior_capacity_rule.py     # needs the sbi-benchmark extras

The fixed rule (``BudgetSettings``) was chosen on two simulators (two_moons and the cluster
study's) and gives every problem with ≥ 500 training rows 12 GLOW blocks of 128 units. The
alternative trains each candidate capacity on the same split and keeps the one with the lowest
NLL on the validation rows, which never train: a choice made on the user's own simulations. It
is judged on sbibm tasks that are not the benchmark's (benchmarks/bench_sbi.py scores two_moons
and gaussian_linear_uniform, whose observations are only ever scored): gaussian_mixture and
slcp, at 10³ and 10⁴ simulations, sbibm's C2ST on their first ``--observations`` observations.
Every candidate is trained and scored, so the table shows what the validation choice picks and
what each capacity would have scored. Cells are written to ``--out`` as they finish.

Finding (``benchmarks/results/posterior_capacity.json``): the validation choice picks the fixed
rule's 12 × 128 in three of the four cells and 4 × 64 in the fourth (slcp at 10³, 0.004 worse,
all three near 0.98), and it misses the best C2ST where that is not the largest network (8 × 96
on slcp at 10⁴). No gain, at 1.7 times the training time: the fixed rule stays the default.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from bench_sbi import c2st_per_observation, simulations

from astrogen import store
from astrogen.models.inn import fit_posterior

DEVELOPMENT_TASKS = ("gaussian_mixture", "slcp")
CAPACITY_CANDIDATES = ((4, 64), (8, 96), (12, 128))  # (GLOW blocks, hidden units)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", nargs="+", default=list(DEVELOPMENT_TASKS))
    ap.add_argument("--budgets", nargs="+", type=int, default=[1_000, 10_000])
    ap.add_argument("--observations", type=int, default=3)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/posterior_capacity.json"))
    args = ap.parse_args()
    if set(args.tasks) & {"two_moons", "gaussian_linear_uniform"}:
        raise SystemExit("two_moons and gaussian_linear_uniform are the benchmark's test tasks")
    torch.set_num_threads(args.threads)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    cells = [(t, b, c) for t in args.tasks for b in args.budgets for c in CAPACITY_CANDIDATES]
    with threadpool_limits(args.threads):
        for task_name, budget, (blocks, hidden) in tqdm(cells, desc="capacity"):
            key = f"{task_name}/{budget}/{blocks}x{hidden}"
            if key in results and len(results[key]["c2st"]) == args.observations:
                continue
            task, prior, theta, x = simulations(task_name, budget, args.seed)
            start = time.perf_counter()
            est = fit_posterior(theta, x, prior=prior, blocks=blocks, hidden=hidden,
                                seed=args.seed, progress=False)  # fmt: skip
            train_s = time.perf_counter() - start
            c2st = c2st_per_observation(task, lambda obs, n, e=est: e.sample(n, obs).float(), args)
            results[key] = {"c2st": c2st, "val_nll": est.history.best_val, "train_s": train_s,
                            "seed": args.seed, "samples": args.samples}  # fmt: skip
            args.out.parent.mkdir(parents=True, exist_ok=True)
            store.write_json(args.out, results)
            tqdm.write(f"{key}: val NLL {est.history.best_val:.3f}, C2ST {np.mean(c2st):.3f}")
    print("| task | simulations | " + " | ".join(f"{b} × {h}" for b, h in CAPACITY_CANDIDATES)
          + " | validation picks | its C2ST | 12 × 128 C2ST |")  # fmt: skip
    print("|---|---|" + "---|" * (len(CAPACITY_CANDIDATES) + 3))
    for task_name in args.tasks:
        for budget in args.budgets:
            row = {
                c: results.get(f"{task_name}/{budget}/{c[0]}x{c[1]}") for c in CAPACITY_CANDIDATES
            }
            if not all(row.values()):
                continue
            pick = min(row, key=lambda c: row[c]["val_nll"])
            cells = [f"{np.mean(r['c2st']):.3f} (val {r['val_nll']:.3f})" for r in row.values()]
            print(f"| {task_name} | {budget} | {' | '.join(cells)} | {pick[0]} × {pick[1]} "
                  f"| {np.mean(row[pick]['c2st']):.3f} | {np.mean(row[(12, 128)]['c2st']):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
