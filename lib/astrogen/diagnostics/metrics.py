r"""Sample- and density-based distances between a model and the truth, and the metrics contract.

All functions take plain arrays (N, D) and return Python floats, so results go straight into the
flat metrics JSON written by :func:`record_metrics`.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping

import numpy as np

from astrogen import paths, store


def wasserstein_1d(x: np.ndarray, y: np.ndarray) -> float:
    r"""1-D Wasserstein-1 distance :math:`\int |F_x(t) - F_y(t)|\,dt` between two samples."""
    x, y = np.sort(np.ravel(x)), np.sort(np.ravel(y))
    grid = np.sort(np.concatenate([x, y]))
    fx = np.searchsorted(x, grid[:-1], side="right") / len(x)
    fy = np.searchsorted(y, grid[:-1], side="right") / len(y)
    return float(np.sum(np.abs(fx - fy) * np.diff(grid)))


def sliced_wasserstein(
    x: np.ndarray, y: np.ndarray, n_projections: int = 128, seed: int = 0
) -> float:
    r"""Sliced W1: mean over random unit directions :math:`u` of :math:`W_1(u^\top x, u^\top y)`."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    u = np.random.default_rng(seed).normal(size=(n_projections, x.shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return float(np.mean([wasserstein_1d(x @ d, y @ d) for d in u]))


def kl_from_log_densities(log_p: np.ndarray, log_q: np.ndarray) -> tuple[float, float]:
    r"""Monte-Carlo forward KL :math:`D(p\|q) = E_p[\log p - \log q]` and its standard error.

    Args:
        log_p, log_q: exact and model log-densities at the same samples drawn from ``p``.
    """
    diff = np.asarray(log_p, float) - np.asarray(log_q, float)
    if not np.all(np.isfinite(diff)):
        raise ValueError(f"{np.sum(~np.isfinite(diff))} non-finite log-density differences")
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))


def record_metrics(
    notebook: str,
    metrics: Mapping[str, float],
    *,
    profile: str,
    seed: int,
    device: str,
    wall_s: float,
) -> dict:
    """Write ``data/metrics/<profile>/<notebook>.json`` (flat: name → number) and return it."""
    record = {k: _finite_number(k, v) for k, v in metrics.items()}
    record.update(
        profile=profile,
        seed=seed,
        device=device,
        wall_s=round(float(wall_s), 2),
        machine=platform.node() or "unknown",
        cpu_threads=os.cpu_count(),
    )
    store.write_json(paths.metrics_dir(profile) / f"{notebook}.json", record)
    return record


def check_thresholds(
    metrics: Mapping[str, float],
    upper: Mapping[str, float] | None = None,
    lower: Mapping[str, float] | None = None,
) -> None:
    """Assert every ``metrics[name] <= upper[name]`` and ``>= lower[name]``.

    Raises:
        AssertionError: listing each failing metric with its value and bound.
    """
    failures = [
        f"{name} = {metrics[name]:.4g} exceeds the upper bound {bound:.4g}"
        for name, bound in (upper or {}).items()
        if not metrics[name] <= bound
    ] + [
        f"{name} = {metrics[name]:.4g} is below the lower bound {bound:.4g}"
        for name, bound in (lower or {}).items()
        if not metrics[name] >= bound
    ]
    if failures:
        raise AssertionError("quality thresholds failed:\n  " + "\n  ".join(failures))


def load_metrics(profile: str) -> dict[str, dict]:
    """All recorded metrics of a profile, keyed by notebook name."""
    return {
        p.stem: json.loads(p.read_text()) for p in sorted(paths.metrics_dir(profile).glob("*.json"))
    }


def _finite_number(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r} is not finite: {value}")
    return value
