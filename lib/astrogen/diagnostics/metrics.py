r"""Sample- and density-based distances between a model and the truth.

All functions take plain arrays (N, D) and return Python floats, so results go straight into the
flat metrics JSON that :meth:`astrogen.notebook.Run.finish` writes.
"""

from __future__ import annotations

import math

import numpy as np


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
