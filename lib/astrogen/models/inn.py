r"""Conditional invertible networks (FrEIA, GLOW coupling) as posterior estimators.

A :class:`PosteriorEstimator` models

.. math:: \ln q(θ \mid x) = \ln \mathcal N\big(f(T(θ); c(x));\, 0, I\big)
          + \ln\left|\det \frac{\partial f}{\partial y}\right|
          + \ln\left|\det \frac{\partial T}{\partial θ}\right|,

where T is fixed (a logit for bounded targets, then standardisation), f the cINN and
c(x) the condition: the standardised observables, optionally concatenated with an image summary
(a conv encoder trained jointly) or with precomputed embedding columns. Scalers live in the
estimator's JSON config, never in a pickle.
"""

from __future__ import annotations

from collections.abc import Sequence

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import numpy as np
import torch
from torch import nn

from astrogen.models.autoencoder import ConvEncoder, LogImageNorm
from astrogen.models.bijectors import BoundedLogit, Chain, Standardize
from astrogen.train import TrainHistory, split_indices, train_likelihood


def _subnet(hidden: int):
    """FrEIA subnet constructor: Linear–ReLU–Linear–ReLU–Linear, last layer zero (identity start)."""

    def build(c_in: int, c_out: int) -> nn.Module:
        net = nn.Sequential(
            nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, c_out),
        )  # fmt: skip
        nn.init.zeros_(net[-1].weight)
        nn.init.zeros_(net[-1].bias)
        return net

    return build


class ConditionalINN(nn.Module):
    r"""z = f(y; c): ``blocks`` × (random permutation, GLOW affine coupling conditioned on c).

    Each coupling splits y = (y₁, y₂) and sets
    :math:`y_2' = y_2 \odot e^{s(y_1, c)} + t(y_1, c)` (and symmetrically for y₁), with s soft-
    clamped to ±``clamp``; log|det| is the sum of the s. Shapes: y, z (N, D); c (N, C).
    """

    def __init__(
        self, features: int, context: int, blocks: int = 12, hidden: int = 128,
        clamp: float = 2.0, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.net = Ff.SequenceINN(features)
        for k in range(blocks):
            self.net.append(Fm.PermuteRandom, seed=seed * 1000 + k)
            self.net.append(
                Fm.GLOWCouplingBlock, cond=0, cond_shape=(context,),
                subnet_constructor=_subnet(hidden), clamp=clamp,
            )  # fmt: skip

    def forward(self, y: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(y, c=[c])

    def inverse(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(z, c=[c], rev=True)[0]

    def log_prob(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        z, log_det = self(y, c)
        return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * np.log(2 * np.pi) + log_det


class PosteriorEstimator(nn.Module):
    """A trained conditional density q(θ | x) with sampling and point estimates.

    ``config`` (JSON): ``targets`` D, ``observables`` C, ``bounds``, ``blocks``, ``hidden``,
    ``clamp``, ``seed``, the scalers ``theta_scaler`` / ``x_scaler`` and optional ``summary``
    (``{"channels", "size", "dim", "width", "norm"}``) for a jointly trained image encoder.
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.target_map = Chain(
            BoundedLogit(config["bounds"]), Standardize.from_dict(config["theta_scaler"])
        )
        self.x_norm = Standardize.from_dict(config["x_scaler"])
        summary = config.get("summary")
        self.image_norm = LogImageNorm(*summary["norm"]) if summary else None
        self.summary = (
            ConvEncoder(summary["channels"], summary["size"], summary["dim"], summary["width"])
            if summary
            else None
        )
        context = config["observables"] + (summary["dim"] if summary else 0)
        self.inn = ConditionalINN(
            config["targets"], context, config["blocks"], config["hidden"], config["clamp"],
            config["seed"],
        )  # fmt: skip
        self.history: TrainHistory | None = None

    def condition(self, x: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """The cINN's condition (N, C'), float32, from observables (N, C) and images."""
        c = self.x_norm(torch.as_tensor(x, dtype=torch.float64))[0].float()
        if self.summary is None:
            if images is not None:
                raise ValueError("this estimator was trained without images")
            return c
        if images is None:
            raise ValueError("this estimator needs the images it was trained with")
        return torch.cat([c, self.summary(self.image_norm(torch.as_tensor(images)))], dim=1)

    def log_prob(
        self, theta: torch.Tensor, x: torch.Tensor, images: torch.Tensor | None = None
    ) -> torch.Tensor:
        """ln q(θ | x), float64, shape (N,), in the units of θ."""
        y, ladj = self.target_map(torch.as_tensor(theta, dtype=torch.float64))
        return self.inn.log_prob(y.float(), self.condition(x, images)).double() + ladj

    @torch.no_grad()
    def sample(
        self, n: int, x: torch.Tensor, images: torch.Tensor | None = None, batch: int = 200_000
    ) -> torch.Tensor:
        """``n`` posterior draws per observation: (n, D) for x of shape (C,), else (M, n, D)."""
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float64)
        single = x.ndim == 1
        x = x[None] if single else x
        if images is not None and single:
            images = torch.as_tensor(images)[None]
        c = self.condition(x, images)
        out = torch.empty(len(x), n, self.config["targets"], dtype=torch.float64)
        rows = max(1, batch // n)
        for i in range(0, len(x), rows):
            cb = c[i : i + rows].repeat_interleave(n, 0)
            z = torch.randn(len(cb), self.config["targets"])
            y = self.inn.inverse(z, cb).double()
            out[i : i + rows] = self.target_map.inverse(y).view(-1, n, self.config["targets"])
        return out[0] if single else out

    @torch.no_grad()
    def map_estimate(
        self, x: torch.Tensor, images: torch.Tensor | None = None, n: int = 1000
    ) -> torch.Tensor:
        """Approximate MAP (M, D): the highest-density of ``n`` posterior draws per observation."""
        x = torch.as_tensor(x, dtype=torch.float64)
        draws = self.sample(n, x, images)
        if x.ndim == 1:
            return self.map_estimate(x[None], None if images is None else images[None], n)[0]
        m = len(x)
        rep_img = None if images is None else torch.as_tensor(images).repeat_interleave(n, 0)
        logq = self.log_prob(draws.reshape(m * n, -1), x.repeat_interleave(n, 0), rep_img)
        best = logq.view(m, n).argmax(1)
        return draws[torch.arange(m), best]


def fit_posterior(
    theta: np.ndarray | torch.Tensor,
    x: np.ndarray | torch.Tensor,
    *,
    images: np.ndarray | torch.Tensor | None = None,
    bounds: Sequence[tuple[float, float] | None] | None = None,
    summary_dim: int = 16,
    summary_width: int = 8,
    blocks: int = 12,
    hidden: int = 128,
    clamp: float = 2.0,
    epochs: int = 100,
    batch_size: int = 512,
    lr: float = 2e-3,
    val_fraction: float = 0.1,
    patience: int = 15,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> PosteriorEstimator:
    """Fit a cINN posterior q(θ | x) on a simulated (θ, x) table by maximum likelihood.

    Args:
        theta: parameters (N, D). ``bounds`` gives ``(low, high)`` or ``None`` per column.
        x: observations (N, C) (any precomputed embedding columns included).
        images: optional images (N, C_img, H, H); a conv summary of ``summary_dim`` features is
            then trained jointly with the cINN.
        blocks, hidden, clamp: cINN architecture (seed defaults: 12, 128, 2.0).
        epochs, batch_size, lr, patience, max_seconds: see
            :func:`~astrogen.train.train_likelihood`; the best-validation-NLL state is kept.
        seed: seeds the split, the weights, the permutations and the shuffling.

    Returns:
        The estimator (on the CPU) with ``.history``; ``.config`` rebuilds it
        (:class:`PosteriorEstimator`) before a ``state_dict`` is loaded.
    """
    theta = torch.as_tensor(np.asarray(theta), dtype=torch.float64)
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if theta.ndim != 2 or x.ndim != 2 or len(theta) != len(x):
        raise ValueError(
            f"need theta (N, D) and x (N, C); got {tuple(theta.shape)}, {tuple(x.shape)}"
        )
    for name, t in (("theta", theta), ("x", x)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    n, d = theta.shape
    bounds = list(bounds) if bounds is not None else [None] * d
    train_idx, val_idx = split_indices(n, val_fraction, seed)
    torch.manual_seed(seed)
    logit = BoundedLogit(bounds)
    with torch.no_grad():
        y_train = logit(theta[train_idx])[0]
    config = {
        "targets": d,
        "observables": x.shape[1],
        "bounds": logit.config()["bounds"],
        "blocks": blocks,
        "hidden": hidden,
        "clamp": clamp,
        "seed": seed,
        "theta_scaler": Standardize(d, y_train).to_dict(),
        "x_scaler": Standardize(x.shape[1], x[train_idx]).to_dict(),
        "summary": None,
    }
    if images is not None:
        images = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if images.ndim != 4 or len(images) != n:
            raise ValueError(f"images must have shape ({n}, C, H, H), got {tuple(images.shape)}")
        norm = LogImageNorm.fit(images[train_idx[:5000]])
        config["summary"] = {
            "channels": images.shape[1],
            "size": images.shape[2],
            "dim": summary_dim,
            "width": summary_width,
            "norm": [norm.shift.item(), norm.scale.item()],
        }
    model = PosteriorEstimator(config)
    with torch.no_grad():
        y = model.target_map(theta)[0].float()
        c = model.x_norm(x)[0].float()

    def nll(yb: torch.Tensor, cb: torch.Tensor, ib: torch.Tensor | None = None) -> torch.Tensor:
        if ib is not None:
            cb = torch.cat([cb, model.summary(model.image_norm(ib))], dim=1)
        return -model.inn.log_prob(yb, cb).mean()

    tensors = [y, c] + ([images] if images is not None else [])
    model.to(device)
    model.history = train_likelihood(
        model,
        nll,
        [t[train_idx].to(device) for t in tensors],
        [t[val_idx].to(device) for t in tensors],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        max_seconds=max_seconds,
        seed=seed,
        progress=progress,
        desc="fit_posterior",
    )
    model.cpu()
    return model
