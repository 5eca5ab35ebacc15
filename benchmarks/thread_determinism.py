"""Which trainings give the same bits at every thread count, and which only at a fixed one.

    python benchmarks/thread_determinism.py [--threads 1 2] [--repeats 2]

Each model is trained in a fresh process per thread count (and ``--repeats`` times per count),
from the same seed and data, and its weights are hashed: equal hashes within a count show the
run is deterministic, equal hashes across counts that the thread count does not enter. The
models are the two kinds the studies train: a conditional flow of study 5's size (a zuko SOSPF on
10-D stars with 20 conditions, batches of 1 024) and a conv autoencoder on 64² three-band images
(study 5's image model; study 4's GANomaly and referee are conv networks too).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys


def train(model: str, threads: int) -> str:
    """SHA-256 (16 hex digits) of the weights of ``model`` trained with ``threads`` threads."""
    import numpy as np
    import torch

    from astrogen import threads as thread_limits

    thread_limits.limit(threads)
    if model == "flow":
        from astrogen.models.flows import fit_density

        rng = np.random.default_rng(0)
        x, c = rng.normal(size=(20_000, 10)), rng.normal(size=(20_000, 20))
        net = fit_density(x, c, "sospf", transforms=2, hidden=(64, 64), epochs=2,
                          batch_size=1024, lr=1e-3, seed=0, progress=False)  # fmt: skip
    else:
        from astrogen.models.autoencoder import fit_autoencoder

        images = torch.rand(300, 3, 64, 64, generator=torch.Generator().manual_seed(0)) + 0.01
        net = fit_autoencoder(images, colour_weight=3.0, epochs=2, batch_size=64, seed=0,
                              progress=False)  # fmt: skip
    weights = b"".join(p.detach().numpy().tobytes() for p in net.parameters())
    return hashlib.sha256(weights).hexdigest()[:16]


def worker(model: str, threads: int) -> str:
    """:func:`train` in a fresh process, so every thread pool starts at ``threads``."""
    command = [sys.executable, __file__, "--worker", model, str(threads)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # model, threads
    args = parser.parse_args()
    if args.worker:
        print(train(args.worker[0], int(args.worker[1])))
        return
    print("| model | threads | weight hashes of the repeats | same bits within | across counts |")
    print("|---|---|---|---|---|")
    for model in ("flow", "autoencoder"):
        hashes = {n: [worker(model, n) for _ in range(args.repeats)] for n in args.threads}
        across = len({h for hs in hashes.values() for h in hs}) == 1
        for n, hs in hashes.items():
            print(f"| {model} | {n} | {' '.join(hs)} | {'yes' if len(set(hs)) == 1 else 'no'} "
                  f"| {'yes' if across else 'no'} |")  # fmt: skip


if __name__ == "__main__":
    main()
