"""How `fit_posterior` enforces a prior's support by default: rejection or a built-in logit.

    python benchmarks/select_posterior_support.py     # needs the sbi-benchmark extras

Both ways keep every posterior draw inside the prior's support. ``support="logit"`` maps a box
onto the real line before the flow, so the flow must model the posterior in logit space, where
mass near an edge becomes a long tail; ``support="reject"`` leaves the flow unbounded and redraws
what falls outside (sbi's NPE does the same). The choice is made on sbibm tasks that are not
the benchmark's (benchmarks/bench_sbi.py scores two_moons and gaussian_linear_uniform, and
their observations are only ever scored): gaussian_mixture (a box prior, a two-component
likelihood) and slcp (a box prior, a multimodal posterior), at 10⁴ simulations, with sbibm's
protocol on their first ``--observations`` observations. Cells are written to ``--out`` as they
finish, as in bench_sbi.py, whose cell runner this script shares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from bench_sbi import run_cell

from astrogen import store

DEVELOPMENT_TASKS = ("gaussian_mixture", "slcp")
SUPPORTS = {"reject": "fit_posterior", "logit": "fit_posterior_logit"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", nargs="+", default=list(DEVELOPMENT_TASKS))
    ap.add_argument("--budget", type=int, default=10_000)
    ap.add_argument("--observations", type=int, default=3)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/posterior_support.json"))
    args = ap.parse_args()
    if set(args.tasks) & {"two_moons", "gaussian_linear_uniform"}:
        raise SystemExit("two_moons and gaussian_linear_uniform are the benchmark's test tasks")
    torch.set_num_threads(args.threads)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    cells = [(t, s) for t in args.tasks for s in SUPPORTS]
    with threadpool_limits(args.threads):
        for task, support in tqdm(cells, desc="support"):
            key = f"{task}/{args.budget}/{support}"
            if key in results and len(results[key]["c2st"]) == args.observations:
                continue
            cell = run_cell(task, args.budget, SUPPORTS[support], args)
            results[key] = {**cell, "seed": args.seed, "samples": args.samples}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            store.write_json(args.out, results)
            tqdm.write(f"{key}: C2ST {cell['c2st_mean']:.3f}")
    print("| task | simulations | C2ST, reject | C2ST, logit | observations |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        row = [results.get(f"{task}/{args.budget}/{s}") for s in SUPPORTS]
        acc = [f"{np.mean(c['c2st']):.3f}" if c else "–" for c in row]
        print(f"| {task} | {args.budget} | {acc[0]} | {acc[1]} | 1–{args.observations} |")


if __name__ == "__main__":
    main()
