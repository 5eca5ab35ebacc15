r"""Conditional invertible networks (FrEIA, GLOW coupling) as posterior estimators.

A :class:`PosteriorEstimator` models

.. math:: \ln q(θ \mid x) = \ln \mathcal N\big(f(T(θ); c(x));\, 0, I\big)
          + \ln\left|\det \frac{\partial f}{\partial y}\right|
          + \ln\left|\det \frac{\partial T}{\partial θ}\right|,

where T is fixed (a logit for ``bounds``, then standardisation), f the cINN and
c(x) the condition: the standardised observables, optionally concatenated with an image summary
(a conv encoder trained jointly) or with precomputed embedding columns. Scalers live in the
estimator's JSON config, never in a pickle.

:func:`fit_posterior` sizes itself to the simulation budget N unless told otherwise
(:func:`budget_settings`), can fit an ensemble (:class:`PosteriorEnsemble`, the equal-weight
mixture of its members) and respects a prior's support when sampling: by default it draws from
the flow and redraws what falls outside (the posterior truncated to the support, as sbi's NPE
does), or, with ``support="logit"``, with the prior's box built into T.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

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


class Prior(Protocol):
    """What :func:`fit_posterior` needs of a prior: a log-density (-inf outside its support)
    and a sampler (torch.distributions and sbi priors qualify)."""

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor: ...

    def sample(self, sample_shape: torch.Size = ...) -> torch.Tensor: ...


class _Posterior(nn.Module):
    """Sampling, support and MAP logic shared by one estimator and an ensemble.

    Subclasses provide ``log_prob(theta, x, images)`` and ``_draw(n, x, images, batch)``, the
    flow's (M, n, D) draws for observations x (M, C).
    """

    prior: Prior | None

    def _outside_support(self, theta: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
        """``logq`` with −inf where θ lies outside the prior's support (if one is attached)."""
        if self.prior is None:
            return logq
        return logq.masked_fill(~in_support(self.prior, theta), -torch.inf)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        x: torch.Tensor,
        images: torch.Tensor | None = None,
        batch: int = 200_000,
        *,
        batched: bool | None = None,
    ) -> torch.Tensor:
        """``n`` posterior draws per observation, inside the prior's support.

        Shapes: x (C,) or (1, C), a single observation, gives (n, D); x (M, C) gives (M, n, D).
        ``batched=True`` gives (M, n, D) for every M, for code that loops over any number of
        observations.
        """
        self.eval()
        x, images, single = _observations(x, images, batched)
        draws = self._draw(n, x, images, batch)
        if self.prior is not None:
            draws = _within_support(
                self.prior,
                draws,
                lambda rows: self._draw(
                    n, x[rows], None if images is None else images[rows], batch
                ),
            )
        return draws[0] if single else draws

    @torch.no_grad()
    def map_estimate(
        self, x: torch.Tensor, images: torch.Tensor | None = None, n: int = 1000
    ) -> torch.Tensor:
        """Approximate MAP, the highest-density of ``n`` draws: (D,) for x (C,), else (M, D)."""
        single = torch.as_tensor(x).ndim == 1
        x, images, _ = _observations(x, images, batched=True)
        draws = self.sample(n, x, images, batched=True)
        m = len(x)
        rep_img = None if images is None else images.repeat_interleave(n, 0)
        logq = self.log_prob(draws.reshape(m * n, -1), x.repeat_interleave(n, 0), rep_img)
        best = draws[torch.arange(m), logq.view(m, n).argmax(1)]
        return best[0] if single else best


def _observations(
    x: torch.Tensor, images: torch.Tensor | None, batched: bool | None
) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Observations as (M, C) (images (M, ...)) and whether the caller gave a single one."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if images is not None:
        images = torch.as_tensor(images)
    if x.ndim == 1:
        x = x[None]
        images = None if images is None else images[None]
    elif x.ndim != 2:
        raise ValueError(f"observations must have shape (C,) or (M, C), got {tuple(x.shape)}")
    return x, images, len(x) == 1 and not batched


def _broadcast_observation(
    x: torch.Tensor, images: torch.Tensor | None, rows: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One observation, (C,) or (1, C), repeated for ``rows`` parameter vectors."""
    x, images, _ = _observations(x, images, batched=True)
    if len(x) == 1 and rows > 1:
        x = x.expand(rows, -1)
        images = None if images is None else images.expand(rows, *images.shape[1:])
    return x, images


def _within_support(prior: Prior, draws: torch.Tensor, redraw, max_rounds: int = 100):
    """Replace the draws (M, n, D) outside the prior's support by fresh ones of the same rows:
    rejection sampling of the flow truncated to the support.

    ``redraw(rows)`` returns (len(rows), n, D) new draws for the observations ``rows``.
    """
    m, n, d = draws.shape

    def inside(t: torch.Tensor) -> torch.Tensor:
        return in_support(prior, t.reshape(-1, d)).view(t.shape[:-1])

    bad = ~inside(draws)
    for _ in range(max_rounds):
        if not bad.any():
            return draws
        rows = bad.any(1).nonzero().squeeze(1)
        fresh = redraw(rows)
        ok = inside(fresh)
        for j, row in enumerate(rows.tolist()):
            holes = bad[row].nonzero().squeeze(1)
            good = fresh[j][ok[j]][: len(holes)]
            draws[row, holes[: len(good)]] = good
            bad[row, holes[: len(good)]] = False
    raise RuntimeError(
        f"{int(bad.sum())} of {m * n} posterior draws still fall outside the prior's support "
        f"after {max_rounds} redraws: the posterior puts almost no mass inside it"
    )


class BoxSupport:
    """The support of a box prior, ``low_j ≤ θ_j ≤ high_j`` per column (``None``: unbounded).

    Only the support is represented: what :func:`in_support` and rejection sampling need of a
    prior given as a box. ``box`` is JSON, so an estimator's config carries it and a loaded
    checkpoint keeps its support without the caller reattaching the prior.
    """

    def __init__(self, box: Sequence[tuple[float, float] | None]) -> None:
        self.box = [None if b is None else [float(b[0]), float(b[1])] for b in box]
        low = [-math.inf if b is None else b[0] for b in self.box]
        high = [math.inf if b is None else b[1] for b in self.box]
        self.support = torch.distributions.constraints.independent(
            torch.distributions.constraints.interval(
                torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
            ),
            1,
        )


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


class PosteriorEstimator(_Posterior):
    """A trained conditional density q(θ | x) with sampling and point estimates.

    ``config`` (JSON): ``targets`` D, ``observables`` C, ``bounds`` (the logit's box),
    ``blocks``, ``hidden``, ``clamp``, ``seed``, the scalers ``theta_scaler`` / ``x_scaler``,
    optional ``summary`` (``{"channels", "size", "dim", "width", "norm"}``) for a jointly trained
    image encoder and optional ``support_box``, a box prior enforced by rejection.
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
        # A box support is saved in the config; a distribution prior is not: reattach it to
        # ``.prior`` after loading a checkpoint.
        box = config.get("support_box")
        self.prior: Prior | None = BoxSupport(box) if box is not None else None

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
        """ln q(θ | x), float64, shape (N,), in the units of θ; one observation x (C,) or (1, C)
        is broadcast to all N rows of θ.

        −inf outside the prior's support. Where the support is enforced by rejection this is the
        flow's density, not renormalised: it integrates to the flow's mass inside the support,
        ≤ 1 (sbi's NPE leaves its leakage uncorrected the same way by default).
        """
        theta = torch.as_tensor(theta, dtype=torch.float64)
        x, images = _broadcast_observation(x, images, len(theta))
        y, ladj = self.target_map(theta)
        logq = self.inn.log_prob(y.float(), self.condition(x, images)).double() + ladj
        return self._outside_support(theta, logq)

    def _draw(
        self, n: int, x: torch.Tensor, images: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        """(M, n, D) raw draws of the flow for x (M, C)."""
        self.eval()
        c = self.condition(x, images)
        out = torch.empty(len(x), n, self.config["targets"], dtype=torch.float64)
        rows = max(1, batch // max(n, 1))
        for i in range(0, len(x), rows):
            cb = c[i : i + rows].repeat_interleave(n, 0)
            z = torch.randn(len(cb), self.config["targets"])
            y = self.inn.inverse(z, cb).double()
            out[i : i + rows] = self.target_map.inverse(y).view(-1, n, self.config["targets"])
        return out


class PosteriorEnsemble(_Posterior):
    r"""Equal-weight mixture of K posterior estimators, :math:`q(θ|x) = \frac1K \sum_k q_k(θ|x)`.

    ``config``: ``{"members": [member config, ...]}``; the members share one validation split.
    Sampling draws each member's share of the ``n`` draws (multinomial counts) and shuffles them.
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(PosteriorEstimator(c) for c in config["members"])
        self.prior: Prior | None = self.members[0].prior

    def log_prob(
        self, theta: torch.Tensor, x: torch.Tensor, images: torch.Tensor | None = None
    ) -> torch.Tensor:
        """ln q(θ | x) of the mixture, float64, shape (N,); −inf outside the prior's support."""
        theta = torch.as_tensor(theta, dtype=torch.float64)
        per_member = torch.stack([m.log_prob(theta, x, images) for m in self.members])
        logq = torch.logsumexp(per_member, 0) - math.log(len(self.members))
        return self._outside_support(theta, logq)

    def _draw(
        self, n: int, x: torch.Tensor, images: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        counts = torch.distributions.Multinomial(n, torch.ones(len(self.members))).sample().long()
        parts = [
            m._draw(int(k), x, images, batch)
            for m, k in zip(self.members, counts, strict=True)
            if k > 0
        ]
        draws = torch.cat(parts, dim=1)
        return draws[:, torch.randperm(n)]


def posterior_from_config(config: dict) -> PosteriorEstimator | PosteriorEnsemble:
    """Rebuild the (untrained) estimator or ensemble a :func:`fit_posterior` config describes."""
    return PosteriorEnsemble(config) if "members" in config else PosteriorEstimator(config)


@dataclass(frozen=True)
class BudgetSettings:
    """Training settings :func:`fit_posterior` derives from the number of simulations N.

    The rules, in rows of the table: a validation split of ``max(0.1 N, min(0.2 N, 500))`` rows
    that never trains (small budgets need a validation NLL precise enough to stop on); batches
    of about 1/25 of the training rows, a power of two in [32, 512], so even 10³ simulations get
    25 optimiser steps per pass; capacity grown with N: 4 GLOW blocks of 64 units below 500
    training rows, else the cluster study's 12 × 128 (chosen by the held-out NLL of fresh
    prior-predictive simulations of two_moons and the cluster simulator, never by a benchmark
    observation: at 300 simulations 4 × 64 was best on both, at 10³ 12 × 128 was best or tied,
    at 10⁴ it tied 8 × 96); a budget of 150 passes in optimiser steps,
    within [3·10³, 3·10⁴]; the validation NLL evaluated once a pass, and early stopping after
    ``patience`` evaluations, at least 20 and at least 600 steps, without an improvement.
    """

    val_rows: int
    batch_size: int
    blocks: int
    hidden: int
    steps: int
    eval_every: int
    patience: int

    @classmethod
    def for_budget(cls, n: int) -> BudgetSettings:
        if n < 20:
            raise ValueError(f"fit_posterior needs at least 20 simulations, got {n}")
        val_rows = int(max(round(0.1 * n), min(round(0.2 * n), 500)))
        n_train = n - val_rows
        batch_size = int(min(max(2 ** math.floor(math.log2(max(n_train / 25, 1))), 32), 512))
        blocks, hidden = (4, 64) if n_train < 500 else (12, 128)
        per_pass = math.ceil(n_train / batch_size)
        steps = int(min(max(150 * per_pass, 3_000), 30_000))
        patience = max(20, math.ceil(600 / per_pass))
        return cls(val_rows, batch_size, blocks, hidden, steps, per_pass, patience)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_posterior(
    theta: np.ndarray | torch.Tensor,
    x: np.ndarray | torch.Tensor,
    *,
    images: np.ndarray | torch.Tensor | None = None,
    prior: Prior | Sequence[tuple[float, float] | None] | None = None,
    bounds: Sequence[tuple[float, float] | None] | None = None,
    summary_dim: int = 16,
    summary_width: int = 8,
    blocks: int | None = None,
    hidden: int | None = None,
    clamp: float = 2.0,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    val_fraction: float | None = None,
    patience: int | None = None,
    ensemble: int = 1,
    support: Literal["reject", "logit"] = "reject",
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> PosteriorEstimator | PosteriorEnsemble:
    """Fit a cINN posterior q(θ | x) on a simulated (θ, x) table by maximum likelihood.

    Every setting left at ``None`` follows the simulation budget N (:class:`BudgetSettings`):
    capacity, batch size, validation split and an optimiser-step budget with early stopping on
    the validation NLL. Every training row is used in every pass (no partial batch is dropped).

    Args:
        theta: parameters (N, D).
        x: observations (N, C) (any precomputed embedding columns included).
        images: optional images (N, C_img, H, H); a conv summary of ``summary_dim`` features is
            then trained jointly with the cINN.
        prior: a box, one ``(low, high)`` or ``None`` per column, or a distribution with
            ``log_prob`` and ``sample``. Sampling respects its support as ``support`` says.
            θ outside the prior's support is an error.
        bounds: a box built into the flow by a logit (the form study 2 uses; equivalent to a
            box ``prior`` with ``support="logit"``).
        support: how a ``prior`` confines the samples. ``"reject"`` (default): the flow is
            unbounded and sampling redraws what falls outside the support, i.e. the posterior
            truncated to it. ``"logit"``: a box, or a distribution whose ``support`` is one, is
            built into the flow by a logit, so every draw is inside; other supports are still
            enforced by rejection. The default was chosen on sbibm tasks outside the benchmark
            (``benchmarks/select_posterior_support.py``): a logit squeezes a posterior near the
            box's edge into a long tail in the flow's space.
        blocks, hidden, clamp: cINN architecture.
        steps: optimiser-step budget; ``epochs`` instead gives a budget in passes.
        batch_size, lr, val_fraction, patience, max_seconds: see
            :func:`~astrogen.train.train_likelihood`; the best-validation-NLL state is kept.
        ensemble: number of members K; K > 1 returns a :class:`PosteriorEnsemble`.
        seed: seeds the split, the weights, the permutations and the shuffling.

    Returns:
        The estimator (on the CPU) with ``.history`` (per member for an ensemble), and
        ``.config``, which :func:`posterior_from_config` rebuilds before a ``state_dict`` loads.
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
    if ensemble < 1:
        raise ValueError(f"ensemble must be at least 1, got {ensemble}")
    n = len(theta)
    box, prior_dist = _prior_box(prior, bounds, theta, support)
    budget = BudgetSettings.for_budget(n)
    val_fraction = budget.val_rows / n if val_fraction is None else val_fraction
    train_idx, val_idx = split_indices(n, val_fraction, seed)
    settings = {
        "blocks": budget.blocks if blocks is None else blocks,
        "hidden": budget.hidden if hidden is None else hidden,
        "batch_size": budget.batch_size if batch_size is None else batch_size,
    }
    if epochs is None:
        schedule = {"steps": budget.steps if steps is None else steps,
                    "eval_every": math.ceil(len(train_idx) / settings["batch_size"])}  # fmt: skip
        default_patience = max(20, math.ceil(600 / schedule["eval_every"]))
    else:
        schedule, default_patience = {"epochs": epochs}, 15
    patience = default_patience if patience is None else patience
    if images is not None:
        images = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if images.ndim != 4 or len(images) != n:
            raise ValueError(f"images must have shape ({n}, C, H, H), got {tuple(images.shape)}")
    opts = {
        "clamp": clamp, "summary_dim": summary_dim, "summary_width": summary_width, "lr": lr,
        "patience": patience, "max_seconds": max_seconds, "device": device, "progress": progress,
        "support_box": prior_dist.box if isinstance(prior_dist, BoxSupport) else None,
    }  # fmt: skip
    # Members differ in weights and shuffling only: they share the split, so none trains on the
    # rows that stop the others.
    members = [
        _fit_member(
            theta,
            x,
            images,
            box,
            (train_idx, val_idx),
            settings,
            schedule,
            {**opts, "seed": seed + 1000 * k},
        )
        for k in range(ensemble)
    ]
    if ensemble == 1:
        model = members[0]
    else:
        model = PosteriorEnsemble({"members": [m.config for m in members]})
        for target, source in zip(model.members, members, strict=True):
            target.load_state_dict(source.state_dict())
        model.history = [m.history for m in members]
    if prior_dist is not None:
        model.prior = prior_dist
    return model


def _prior_box(
    prior, bounds, theta: torch.Tensor, support: str = "reject"
) -> tuple[list, Prior | None]:
    """(logit bounds per column, the prior whose support sampling enforces by rejection)."""
    d = theta.shape[1]
    if support not in ("reject", "logit"):
        raise ValueError(f"support must be 'reject' or 'logit', got {support!r}")
    if prior is not None and bounds is not None:
        raise ValueError("give either prior or bounds, not both")
    if prior is None:
        box = list(bounds) if bounds is not None else [None] * d
        _check_box(box, theta)
        return box, None
    if hasattr(prior, "log_prob") and hasattr(prior, "sample"):
        inside = in_support(prior, theta)
        if not inside.all():
            raise ValueError(
                f"{int((~inside).sum())} of {len(theta)} rows of theta lie outside the prior's "
                "support: the prior must be the one the simulations were drawn from"
            )
        box = (_support_box(prior, d) if support == "logit" else None) or [None] * d
        return box, prior
    box = list(prior)
    _check_box(box, theta)
    columns = [None if b is None or b[0] is None else b for b in box]
    rejecting = BoxSupport(columns) if any(c is not None for c in columns) else None
    return (box if support == "logit" else [None] * d), rejecting


def _check_box(box: list, theta: torch.Tensor) -> None:
    """A box of one ``(low, high)`` or ``None`` per column of θ that contains every row."""
    d = theta.shape[1]
    if len(box) != d:
        raise ValueError(
            f"the prior box needs one (low, high) or None per column: {d}, got {len(box)}"
        )
    for j, b in enumerate(box):
        if b is not None and b[0] is not None:
            lo, hi = float(b[0]), float(b[1])
            if not lo < hi:
                raise ValueError(f"prior box column {j}: need low < high, got ({lo}, {hi})")
            if ((theta[:, j] < lo) | (theta[:, j] > hi)).any():
                raise ValueError(f"theta column {j} has values outside its prior box ({lo}, {hi})")


def _support_box(prior: Prior, d: int) -> list | None:
    """The box of a distribution whose support is an interval per column, else None."""
    support = getattr(prior, "support", None)
    while support is not None and not hasattr(support, "lower_bound"):
        support = getattr(support, "base_constraint", None)
    if support is None:
        return None
    lo = torch.as_tensor(support.lower_bound, dtype=torch.float64).expand(d)
    hi = torch.as_tensor(support.upper_bound, dtype=torch.float64).expand(d)
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        return None
    return [(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]


def in_support(prior: Prior, theta: torch.Tensor) -> torch.Tensor:
    """Whether each row of θ (N, D) lies in the prior's support, shape (N,).

    A distribution's ``support`` constraint decides where it has one (torch distributions refuse
    to evaluate ``log_prob`` outside it); otherwise a finite ``log_prob``.
    """
    theta = torch.as_tensor(theta)
    support = getattr(prior, "support", None)
    if support is not None and hasattr(support, "check"):
        inside = support.check(theta)
        return inside.all(-1) if inside.ndim > 1 else inside
    theta = theta.to(torch.as_tensor(prior.sample((1,))).dtype)  # e.g. float32 sbi priors
    return torch.isfinite(torch.as_tensor(prior.log_prob(theta)))


def _fit_member(
    theta: torch.Tensor,
    x: torch.Tensor,
    images: torch.Tensor | None,
    box: list,
    split: tuple[torch.Tensor, torch.Tensor],
    settings: dict,
    schedule: dict,
    opts: dict,
) -> PosteriorEstimator:
    """One cINN trained on the rows ``split[0]``, stopped early on the rows ``split[1]``."""
    seed = opts["seed"]
    train_idx, val_idx = split
    d = theta.shape[1]
    torch.manual_seed(seed)
    logit = BoundedLogit(box)
    with torch.no_grad():
        y_train = logit(theta[train_idx])[0]
    config = {
        "targets": d,
        "observables": x.shape[1],
        "bounds": logit.config()["bounds"],
        "blocks": settings["blocks"],
        "hidden": settings["hidden"],
        "clamp": opts["clamp"],
        "seed": seed,
        "theta_scaler": Standardize(d, y_train).to_dict(),
        "x_scaler": Standardize(x.shape[1], x[train_idx]).to_dict(),
        "summary": None,
    }
    if opts.get("support_box") is not None:
        config["support_box"] = opts["support_box"]
    if images is not None:
        norm = LogImageNorm.fit(images[train_idx[:5000]])
        config["summary"] = {
            "channels": images.shape[1],
            "size": images.shape[2],
            "dim": opts["summary_dim"],
            "width": opts["summary_width"],
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

    device = opts["device"]
    tensors = [y, c] + ([images] if images is not None else [])
    model.to(device)
    model.history = train_likelihood(
        model,
        nll,
        [t[train_idx].to(device) for t in tensors],
        [t[val_idx].to(device) for t in tensors],
        batch_size=settings["batch_size"],
        lr=opts["lr"],
        patience=opts["patience"],
        max_seconds=opts["max_seconds"],
        drop_last=False,
        seed=seed,
        progress=opts["progress"],
        desc="fit_posterior",
        **schedule,
    )
    model.cpu()
    return model
