r"""Calibration of posterior samples against the true parameters that generated the data.

Inputs are posterior draws ``samples`` (N, S, D) — S draws for each of N observations — and the
true parameters ``truth`` (N, D). For a calibrated posterior the truth is one more draw from it,
so its rank among the draws is uniform (SBC, Talts et al. 2018), every central interval covers it
at its nominal rate, and the TARP expected coverage (Lemos et al. 2023) follows the diagonal.
"""

from __future__ import annotations

import numpy as np


def ranks(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """SBC ranks: number of draws below the truth, per observation and parameter, (N, D) in [0, S]."""
    return np.sum(samples < truth[:, None, :], axis=1)


def central_coverage(samples: np.ndarray, truth: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Fraction of observations whose truth lies in the central ``level`` interval, (L, D).

    The interval is the one between the (1 - level)/2 and (1 + level)/2 sample quantiles; with
    u the truth's normalised rank, the truth is inside iff |u - 1/2| < level/2.
    """
    u = (ranks(samples, truth) + 0.5) / (samples.shape[1] + 1)
    return np.stack([np.mean(np.abs(u - 0.5) < lvl / 2, axis=0) for lvl in np.atleast_1d(levels)])


def tarp_coverage(
    samples: np.ndarray, truth: np.ndarray, rng: np.random.Generator, n_alpha: int = 51
) -> tuple[np.ndarray, np.ndarray]:
    r"""TARP expected coverage probability for credibility levels α ∈ [0, 1].

    For each observation a reference point θ_r is drawn uniformly over the box spanned by the
    truths (in standardised units); f = fraction of draws closer to θ_r than the truth is. The
    expected coverage ECP(α) = mean(f < α) equals α for a calibrated posterior (and only then,
    for a random θ_r), so ``max |ECP - α|`` measures joint miscalibration.

    Returns:
        ``(alpha, ecp)``, each of shape (n_alpha,).
    """
    mean, std = truth.mean(0), truth.std(0)
    s, t = (samples - mean) / std, (truth - mean) / std
    ref = rng.uniform(t.min(0), t.max(0), size=t.shape)
    d_samples = np.linalg.norm(s - ref[:, None, :], axis=-1)
    d_truth = np.linalg.norm(t - ref, axis=-1)
    f = np.mean(d_samples < d_truth[:, None], axis=1)
    alpha = np.linspace(0, 1, n_alpha)
    return alpha, np.array([np.mean(f < a) for a in alpha])
