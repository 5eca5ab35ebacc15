"""Which trainings give the same bits at every thread count, and which only at a fixed one.

    python benchmarks/thread_determinism.py [--threads 1 2] [--repeats 2]

Each model is trained in a fresh process per thread count (and ``--repeats`` times per count),
from the same seed and data, and its weights are hashed: equal hashes within a count show the
run is deterministic, equal hashes across counts that the thread count does not enter. The
models are the kinds the studies train, at small sizes: a conditional flow of study 5's width (a
zuko SOSPF on 10-D stars with 20 conditions, batches of 1 024), the FrEIA cINN of study 2
(``fit_posterior`` at its small-budget defaults, and ``cinn_study2`` at study 2's width: 12
blocks × 128 units, batches of 2 048), study 2's MLP ensemble (``mlp``), the cWGAN-GP of study 3, the C2ST's gradient-boosted classifier (its AUC is
hashed) and a conv autoencoder on 64² three-band images (study 5's image model; study 4's
GANomaly and referee are conv networks too).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys

MODELS = ("flow", "cinn", "cinn_study2", "mlp", "cwgan_gp", "c2st", "autoencoder")


def train(model: str, threads: int) -> str:
    """SHA-256 (16 hex digits) of the weights of ``model`` (of :data:`MODELS`) trained with
    ``threads`` threads (for ``c2st``, of its AUC)."""
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
    elif model == "autoencoder":
        from astrogen.models.autoencoder import fit_autoencoder

        images = torch.rand(300, 3, 64, 64, generator=torch.Generator().manual_seed(0)) + 0.01
        net = fit_autoencoder(images, colour_weight=3.0, epochs=2, batch_size=64, seed=0,
                              progress=False)  # fmt: skip
    elif model == "cinn":
        from astrogen.models.inn import fit_posterior

        rng = np.random.default_rng(0)
        theta = rng.uniform(-1, 1, size=(5_000, 3))
        x = np.hstack([theta, theta**2]) + 0.1 * rng.normal(size=(5_000, 6))
        net = fit_posterior(theta, x, steps=300, seed=0, progress=False)
    elif model == "cinn_study2":
        from astrogen.models.inn import fit_posterior

        rng = np.random.default_rng(0)
        theta = rng.uniform(-1, 1, size=(40_000, 6))
        x = np.hstack([theta, theta[:, :1] ** 2]) + 0.1 * rng.normal(size=(40_000, 7))
        net = fit_posterior(theta, x, blocks=12, hidden=128, batch_size=2048, steps=60,
                            seed=0, progress=False)  # fmt: skip
    elif model == "mlp":
        from astrogen.models.regression import fit_mlp_ensemble

        rng = np.random.default_rng(0)
        x = rng.normal(size=(20_000, 7))
        y = np.tanh(x[:, :6]) + 0.1 * rng.normal(size=(20_000, 6))
        net = fit_mlp_ensemble(x, y, members=2, hidden=128, epochs_mse=1, epochs_mae=1,
                               seed=0, progress=False)  # fmt: skip
    elif model == "cwgan_gp":
        from astrogen.models.gan import fit_cwgan_gp

        rng = np.random.default_rng(0)
        c, t = rng.normal(size=(5_000, 4)), rng.normal(size=(5_000, 3))
        y = t + 0.3 * rng.normal(size=(5_000, 3))
        net = fit_cwgan_gp(y, c, t, validation_score=lambda _: 0.0, generator_steps=200,
                           eval_every=100, seed=0, progress=False)  # fmt: skip
    else:  # the C2ST's gradient-boosted classifier (scikit-learn, OpenMP)
        from astrogen.diagnostics.c2st import c2st

        rng = np.random.default_rng(0)
        result = c2st(rng.normal(size=(5_000, 8)), rng.normal(0.1, 1, size=(5_000, 8)), seed=0)
        return hashlib.sha256(np.float64(result.auc).tobytes()).hexdigest()[:16]
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
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # model, threads
    args = parser.parse_args()
    if args.worker:
        print(train(args.worker[0], int(args.worker[1])))
        return
    print("| model | threads | weight hashes of the repeats | same bits within | across counts |")
    print("|---|---|---|---|---|")
    for model in args.models:
        hashes = {n: [worker(model, n) for _ in range(args.repeats)] for n in args.threads}
        across = len({h for hs in hashes.values() for h in hs}) == 1
        for n, hs in hashes.items():
            print(f"| {model} | {n} | {' '.join(hs)} | {'yes' if len(set(hs)) == 1 else 'no'} "
                  f"| {'yes' if across else 'no'} |")  # fmt: skip


if __name__ == "__main__":
    main()
