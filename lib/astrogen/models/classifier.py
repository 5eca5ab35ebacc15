r"""Calibrated probability classifier p(y = 1 | x) and its calibration diagnostics.

An MLP on standardised inputs is trained by binary cross-entropy (a proper scoring rule, so its
minimiser is the true conditional probability); early stopping on a validation split. Calibration
is then measured, not assumed: the reliability curve bins predictions p into equal-count bins and
compares the mean p with the observed frequency, and the expected calibration error is

.. math:: \mathrm{ECE} = \sum_k \frac{n_k}{N}\,\big|\bar y_k - \bar p_k\big|.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from astrogen.models.bijectors import Standardize
from astrogen.models.regression import mlp
from astrogen.train import split_indices, train_likelihood


class ProbabilityClassifier(nn.Module):
    """MLP x (N, C) → p (N,); the input scaler lives in ``config`` (JSON)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.x_norm = Standardize.from_dict(config["x_scaler"])
        self.net = mlp(config["inputs"], 1, config["hidden"], config["layers"])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N,) for standardised float32 inputs (N, C)."""
        return self.net(x)[:, 0]

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """p(y = 1 | x), shape (N,)."""
        self.eval()
        c = self.x_norm(torch.as_tensor(np.asarray(x), dtype=torch.float64))[0].float()
        return torch.sigmoid(self.logits(c)).double().numpy()


def fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 128,
    layers: int = 3,
    epochs: int = 30,
    batch_size: int = 1024,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    patience: int = 5,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> ProbabilityClassifier:
    """Fit p(y = 1 | x) on inputs x (N, C) and binary labels y (N,) by cross-entropy.

    ``device`` is where it trains (``"cuda"`` on a GPU); the returned model lives on the CPU.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"x must be (N, C) and y (N,), got {x.shape} and {y.shape}")
    if not np.isfinite(x).all() or not np.isin(y, (0, 1)).all():
        raise ValueError("x must be finite and y must hold only 0 and 1")
    torch.manual_seed(seed)
    xt = torch.as_tensor(x)
    config = {
        "inputs": x.shape[1], "hidden": hidden, "layers": layers,
        "x_scaler": Standardize(x.shape[1], xt).to_dict(),
    }  # fmt: skip
    model = ProbabilityClassifier(config).to(device)
    xs = model.x_norm(xt.to(device))[0].float()
    ys = torch.as_tensor(y, dtype=torch.float32, device=device)
    train, val = split_indices(len(x), val_fraction, seed)
    loss = nn.BCEWithLogitsLoss()

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return loss(model.logits(xb), yb)

    model.history = train_likelihood(
        model, loss_fn, (xs[train], ys[train]), (xs[val], ys[val]), epochs=epochs,
        batch_size=batch_size, lr=lr, patience=patience, seed=seed, progress=progress,
        desc="classifier",
    )  # fmt: skip
    return model.cpu().eval()


def reliability_curve(
    p: np.ndarray, y: np.ndarray, bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-count bins of p: (mean predicted p (K,), observed frequency (K,), counts (K,))."""
    order = np.argsort(p)
    groups = np.array_split(order, bins)
    mean_p = np.array([p[g].mean() for g in groups])
    freq = np.array([np.asarray(y, dtype=float)[g].mean() for g in groups])
    return mean_p, freq, np.array([len(g) for g in groups])


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of the module docstring over equal-count bins."""
    mean_p, freq, counts = reliability_curve(p, y, bins)
    return float(np.sum(counts * np.abs(freq - mean_p)) / counts.sum())
