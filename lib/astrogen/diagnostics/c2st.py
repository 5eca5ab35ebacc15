"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017).

A boosted-tree classifier learns to tell sample ``x`` (label 0) from sample ``y`` (label 1);
its out-of-fold predictions give both the accuracy (0.5: indistinguishable, 1: separable; the
quantity sbibm reports) and the ROC AUC (threshold-free, for unequal sample sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold


@dataclass(frozen=True)
class C2STResult:
    """Out-of-fold accuracy and ROC AUC, and the number of points classified."""

    accuracy: float
    auc: float
    n: int


def c2st(
    x: np.ndarray,
    y: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 200,
    balanced: bool = False,
) -> C2STResult:
    """Classifier two-sample test between samples ``x`` (N, D) and ``y`` (M, D).

    Args:
        folds: stratified cross-validation folds; every point is classified once, out of fold.
        max_iter: boosting iterations of the classifier.
        balanced: truncate both samples to min(N, M) points first, so chance accuracy is 1/2.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if balanced:
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
    features = np.concatenate([x, y])
    labels = np.r_[np.zeros(len(x)), np.ones(len(y))]
    proba = np.empty(len(labels))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(
        features, labels
    ):
        clf = HistGradientBoostingClassifier(max_iter=max_iter, random_state=seed)
        clf.fit(features[train], labels[train])
        proba[test] = clf.predict_proba(features[test])[:, 1]
    accuracy = float(np.mean((proba > 0.5) == labels))
    return C2STResult(accuracy, float(roc_auc_score(labels, proba)), len(labels))
