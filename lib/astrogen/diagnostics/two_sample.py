r"""Classifier two-sample test: is a simulation distinguishable from observations?

Given per-image representations of simulated images S (n_s, D) and observed images O (n_o, D),
each side is split at random into a training and a held-out part (``test_fraction``). A
probability classifier (:func:`astrogen.models.classifier.fit_classifier`, an MLP trained by
cross-entropy with early stopping on part of the *training* rows) learns to tell S from O; its
outputs t on the held-out rows are the test statistic.

**Validity under the null.** If S and O are drawn from one distribution, the held-out rows of
both sides are exchangeable and independent of the fitted classifier, so their outputs t are
i.i.d. whatever the classifier learned. The one-sided Mann–Whitney test of "t(simulated) tends to
exceed t(observed)" is then exact (``method="exact"`` for small, tie-free samples; the normal
approximation with tie correction otherwise), and P(p ≤ α) ≤ α.

**Effect size.** The held-out AUROC = U / (m n) (the Mann–Whitney U of the same outputs), with a
95 % DeLong interval:

.. math:: \widehat{\rm Var} = \frac{s_{10}^2}{m} + \frac{s_{01}^2}{n},\qquad
          V_{10}(x_i) = \frac{1}{n}\sum_j ψ(x_i, y_j),\; V_{01}(y_j) = \frac{1}{m}\sum_i ψ(x_i, y_j),

ψ(x, y) = 1[x > y] + ½ 1[x = y], s² the sample variances of V₁₀ and V₀₁ (DeLong et al. 1988).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from astrogen.models.classifier import fit_classifier

EXACT_LIMIT = 50  # samples per side up to which the exact null distribution of U is used


@dataclass(frozen=True)
class TwoSampleRating:
    """Held-out AUROC (0.5: indistinguishable) with its 95 % interval, the p-value of "the
    simulation differs", and how many images each part used."""

    auroc: float
    auroc_lo: float
    auroc_hi: float
    p_value: float
    n_simulated: int
    n_observed: int
    n_test_simulated: int
    n_test_observed: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def delong_interval(
    negatives: np.ndarray, positives: np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """(AUROC, lower, upper) of ``positives`` scoring above ``negatives``, DeLong's variance,
    clipped to [0, 1]."""
    x = np.asarray(positives, float)
    y = np.asarray(negatives, float)
    m, n = len(x), len(y)
    ranks = stats.rankdata(np.r_[x, y])
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    v10 = (ranks[:m] - rx) / n  # per positive: fraction of negatives below (+½ ties)
    v01 = 1 - (ranks[m:] - ry) / m  # per negative: fraction of positives above
    auc = float(v10.mean())
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n if m > 1 and n > 1 else np.nan
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * np.sqrt(max(var, 0.0))
    return auc, float(max(0.0, auc - half)), float(min(1.0, auc + half))


def mann_whitney_p(negatives: np.ndarray, positives: np.ndarray) -> float:
    """One-sided p-value of "``positives`` tend to exceed ``negatives``" (Mann–Whitney U)."""
    x, y = np.asarray(positives, float), np.asarray(negatives, float)
    tied = len(np.unique(np.r_[x, y])) < len(x) + len(y)
    small = max(len(x), len(y)) <= EXACT_LIMIT and not tied
    method = "exact" if small else "asymptotic"
    return float(stats.mannwhitneyu(x, y, alternative="greater", method=method).pvalue)


def rate_simulation(
    simulated: np.ndarray,
    observed: np.ndarray,
    *,
    test_fraction: float = 0.5,
    hidden: int = 64,
    layers: int = 2,
    epochs: int = 60,
    batch_size: int = 128,
    lr: float = 2e-3,
    patience: int = 10,
    seed: int = 0,
) -> TwoSampleRating:
    """Classifier two-sample test of the module docstring.

    Args:
        simulated, observed: per-image representations (N, D), finite (e.g. measured
            properties, embeddings, or both side by side).
        test_fraction: share of each side held out for the test (the rest trains).
        hidden, layers, epochs, batch_size, lr, patience: the classifier's
            (:func:`~astrogen.models.classifier.fit_classifier`).
        seed: the split and the classifier's initialisation.

    Raises:
        ValueError: for shapes that differ, non-finite values, or a side too small to split.
    """
    s = np.asarray(simulated, np.float64)
    o = np.asarray(observed, np.float64)
    if s.ndim != 2 or o.ndim != 2 or s.shape[1] != o.shape[1]:
        raise ValueError(f"simulated and observed must be (N, D) alike, got {s.shape}, {o.shape}")
    if not (np.isfinite(s).all() and np.isfinite(o).all()):
        raise ValueError("simulated and observed representations must be finite")
    rng = np.random.default_rng([seed, 19])
    parts = []
    for side in (s, o):
        n_test = round(test_fraction * len(side))
        if n_test < 2 or len(side) - n_test < 2:
            raise ValueError(f"{len(side)} images cannot be split into training and test parts")
        order = rng.permutation(len(side))
        parts.append((side[order[n_test:]], side[order[:n_test]]))
    (s_train, s_test), (o_train, o_test) = parts
    model = fit_classifier(
        np.r_[s_train, o_train], np.r_[np.ones(len(s_train)), np.zeros(len(o_train))],
        hidden=hidden, layers=layers, epochs=epochs, batch_size=batch_size, lr=lr,
        val_fraction=0.2, patience=patience, seed=seed, progress=False,
    )  # fmt: skip
    # logits keep the ranking where probabilities saturate to ties at 0 or 1
    t_s, t_o = _logits(model, s_test), _logits(model, o_test)
    auc, lo, hi = delong_interval(t_o, t_s)
    return TwoSampleRating(
        auroc=auc, auroc_lo=lo, auroc_hi=hi, p_value=mann_whitney_p(t_o, t_s),
        n_simulated=len(s), n_observed=len(o), n_test_simulated=len(s_test),
        n_test_observed=len(o_test),
    )  # fmt: skip


def _logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        c = model.x_norm(torch.as_tensor(x, dtype=torch.float64))[0].float()
        return model.logits(c).double().numpy()
