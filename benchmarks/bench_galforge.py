"""Sampling throughput of the study-5 flow families, as one table with ratios.

    python benchmarks/bench_galforge.py [--stars 1000000] [--threads 2] [--trained]

Samples ``--stars`` stars of one galaxy (one condition vector) from each flow family at the
default architecture, and from the exact mock-galaxy sampler for comparison, on the CPU.
``DensityEstimator.sample`` inverts masked autoregressive transforms with one conditioner pass
(``astrogen.models.flow_inverse``); zuko's own inverse (one pass per feature, SOSPF by bisection) is
timed on 10⁴ stars next to it. The cost of SOSPF's Newton inversion depends on the weights, so
``--trained`` times the default-profile flows of notebook 53 (trained and cached by
``python run_all.py --only 53``; trained here if absent) on a held-out galaxy; without it,
one-epoch flows of the same size are timed. The target: 10⁶ stars of one galaxy in
≤ 10 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import rate

from astrogen.config import resolve
from astrogen.models.bijectors import BoundedLogit
from astrogen.models.flows import DensityEstimator, fit_density
from astrogen.sims import galforge as sim
from astrogen.studies import galforge as study
from astrogen.studies.galforge.configuration import PROFILES, Config


def trained_flows(seed: int = 0) -> tuple[dict[str, DensityEstimator], np.ndarray]:
    """The default-profile flows (best learning rate per family) and a test galaxy's conditions."""
    cfg = resolve(Config, "default", PROFILES)
    flows = {f: study.flow_for(cfg, seed, f, progress=False)[0] for f in study.FAMILIES}
    table = study.galaxy_conditions(cfg, seed)
    test = table[table["split"] == "test"]
    return flows, test[list(study.condition_names(cfg, use_latent=True))].to_numpy()[0]


def one_epoch_flows() -> tuple[dict[str, DensityEstimator], np.ndarray]:
    """Flows of the default size after one epoch on one mock galaxy, and a random condition."""
    cfg = resolve(Config, "default", PROFILES)
    galaxy = sim.sample_galaxies(1, np.random.default_rng(0)).iloc[0]
    x = sim.sample_stars(galaxy, 2000, np.random.default_rng(1))
    n_context = len(study.condition_names(cfg, use_latent=True))
    context = np.random.default_rng(2).normal(size=(len(x), n_context))
    options = {
        "bijector": BoundedLogit(study.PHYSICAL_BOUNDS), "epochs": 1, "progress": False,
        "transforms": cfg.flow.transforms, "hidden": (cfg.flow.hidden,) * cfg.flow.layers,
    }  # fmt: skip
    return {f: fit_density(x, context, f, **options) for f in study.FAMILIES}, context[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stars", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trained", action="store_true", help="time notebook 53's trained flows")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    flows, condition = trained_flows() if args.trained else one_epoch_flows()
    galaxy = sim.sample_galaxies(1, np.random.default_rng(0)).iloc[0]
    rows = [("exact mock sampler", rate(
        lambda: sim.sample_stars(galaxy, args.stars, np.random.default_rng(3)), args.stars, 1))]  # fmt: skip
    c = torch.as_tensor(condition)
    for family, est in flows.items():

        def zuko_inverse(n: int, est=est) -> None:
            with torch.no_grad():
                est.flow(est._context(c)).sample((n,))

        rows.append((family, rate(lambda est=est: est.sample(args.stars, c), args.stars, 1)))
        rows.append(("  zuko inverse (10^4)", rate(lambda f=zuko_inverse: f(10_000), 10_000, 1)))
    kind = "notebook 53's trained flows" if args.trained else "one-epoch flows"
    print(f"{kind}, {args.stars:.0e} stars of one galaxy, {args.threads} threads")
    print(f"{'sampler':24s} {'stars/s':>12s} {'s per 10^6':>11s} {'vs exact':>9s}")
    for name, value in rows:
        print(f"{name:24s} {value:12.3g} {1e6 / value:11.2f} {value / rows[0][1]:9.2f}")


if __name__ == "__main__":
    main()
