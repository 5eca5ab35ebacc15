"""Notebook 53's trainings one after another on two threads, or side by side on one thread each.

    python benchmarks/bench_galforge_training.py [--epochs 1] [--families galacticflow sospf nice maf]

Notebook 53 trains many independent flows (12 learning-rate trials, 4 families, 6 ablation and
galaxy-balanced flows). They used to train one after another on the job's two threads; they now
train in worker processes side by side, one thread each (``studies.galforge.flows_for``,
``astrogen.workers``). This script times, in one run and on the default profile's population
and flow architecture, one ``--epochs`` training of each family:

- one after another on 2 threads (the former way),
- one after another on 1 thread,
- side by side in 2 one-thread workers, through ``tune_learning_rates`` as notebook 53 runs it
  (spawning the workers and loading the population in each included).

The population and the autoencoder (2 epochs here: only the flows are timed) are built first in
a temporary store, untimed. Ratios are relative to the former way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from astrogen import paths
from astrogen.config import resolve
from astrogen.models.bijectors import BoundedLogit
from astrogen.models.flows import fit_density
from astrogen.studies import galforge as study
from astrogen.studies.galforge.configuration import PROFILES, Config


def one_after_another(cfg: Config, families: list[str], threads: int, lr: float) -> float:
    """Seconds to train one flow per family in this process on ``threads`` threads."""
    data = study.dataset(cfg, 0, progress=False)
    z = study.projection_latents(cfg, 0, data)
    table = study.galaxy_conditions(cfg, 0, data, z)
    names = study.condition_names(cfg, use_latent=True)
    x, c, _ = study.star_arrays(data, table, "train", names, None, 0, z)
    x_val, c_val, _ = study.star_arrays(data, table, "val", names)
    f = cfg.flow
    torch.set_num_threads(threads)
    start = time.perf_counter()
    for family in families:
        fit_density(
            x, c, family, bijector=BoundedLogit(study.PHYSICAL_BOUNDS), transforms=f.transforms,
            hidden=(f.hidden,) * f.layers, epochs=cfg.tuning.epochs, batch_size=f.batch_size,
            lr=lr, validation=(x_val, c_val), seed=0, progress=False,
        )  # fmt: skip
    return time.perf_counter() - start


def side_by_side(cfg: Config, families: list[str], workers: int) -> float:
    """Seconds for ``tune_learning_rates`` to train one trial per family in ``workers``
    one-thread workers."""
    os.environ["ASTROGEN_THREADS"] = str(workers)
    start = time.perf_counter()
    study.tune_learning_rates(cfg, 0, progress=False, families=families)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--families", nargs="+", default=list(study.FAMILIES))
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    overrides = {
        "autoencoder.epochs": 2,
        "tuning.epochs": args.epochs,
        "tuning.lr_grid": (args.lr,),
    }
    cfg = resolve(Config, "default", PROFILES, overrides)
    paths.DATA = Path(tempfile.mkdtemp(prefix="bench-galforge-"))
    torch.set_num_threads(2)
    study.autoencoder_for(cfg, 0, progress=False)  # the population and its autoencoder, untimed
    former = one_after_another(cfg, args.families, 2, args.lr)
    rows = [
        ("one after another, 2 threads (former)", former),
        ("one after another, 1 thread", one_after_another(cfg, args.families, 1, args.lr)),
        ("side by side, 2 workers × 1 thread", side_by_side(cfg, args.families, 2)),
    ]
    print(f"{len(args.families)} flows of the default size, {args.epochs} epoch(s) each "
          f"({cfg.data.n_galaxies} galaxies, batches of {cfg.flow.batch_size} stars)\n")  # fmt: skip
    print("| how | wall [s] | speed relative to the former way |")
    print("|---|---|---|")
    for name, wall in rows:
        print(f"| {name} | {wall:.1f} | {former / wall:.2f}× |")


if __name__ == "__main__":
    main()
