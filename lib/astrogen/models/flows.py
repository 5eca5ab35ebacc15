r"""Conditional density estimators built on zuko flows, and the :func:`fit_density` entry point.

A :class:`DensityEstimator` models

.. math:: \log q(x \mid c) = \log p_{\rm flow}\big(T(x) \mid \tilde c\big)
          + \log\left|\det \frac{\partial T}{\partial x}\right|,

where :math:`T` is a fixed bijection (an optional problem-specific map followed by feature
standardisation, all in float64) and :math:`\tilde c` is the standardised context. The flow runs
in float32; log-densities come back in float64 in the units of ``x``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import zuko
from torch import nn
from zuko.distributions import DiagNormal
from zuko.transforms import LULinearTransform, MonotonicRQSTransform

from astrogen.models.bijectors import Bijector, Chain, Standardize, bijector_from_config
from astrogen.models.flow_inverse import flow_inverse
from astrogen.train import TrainHistory, split_indices, train_likelihood


def _lu_mixing(weights: torch.Tensor, log_diagonal: torch.Tensor) -> LULinearTransform:
    """x ↦ L U x with L = tril(W, −1) + diag(e^d) and U = triu(W, 1) + I: invertible for any W, d."""
    lu = torch.tril(weights, -1) + torch.triu(weights, 1) + torch.diag(log_diagonal.exp())
    return LULinearTransform(lu)


class SplineCouplingFlow(zuko.flows.Flow):
    r"""GalacticFlow-style flow: rational-quadratic spline couplings with learned linear mixing.

    Each of the ``transforms`` blocks is a coupling layer — half of the D features (alternating
    halves) pass through monotonic rational-quadratic splines (``bins`` bins on [−5, 5]) whose
    knots are an MLP of the other half and the context — followed by a learned invertible linear
    map :math:`x ↦ LUx` (L lower-triangular with positive diagonal e^d, U unit upper-triangular,
    identity at initialisation) that mixes all features before the next coupling. Base N(0, I_D).

    Args:
        features: D. context: size of the conditioning vector. transforms: coupling blocks.
        bins: spline bins. kwargs: to :class:`zuko.flows.MaskedAutoregressiveTransform`
            (``hidden_features``, ``activation``).
    """

    def __init__(
        self, features: int, context: int = 0, transforms: int = 5, bins: int = 8, **kwargs
    ) -> None:
        orders = [torch.arange(features), torch.flipud(torch.arange(features))]
        layers: list[zuko.flows.LazyTransform] = []
        for i in range(transforms):
            layers.append(
                zuko.flows.MaskedAutoregressiveTransform(
                    features=features, context=context, passes=2, order=orders[i % 2],
                    univariate=MonotonicRQSTransform, shapes=[(bins,), (bins,), (bins - 1,)],
                    **kwargs,
                )
            )  # fmt: skip
            if i < transforms - 1:
                layers.append(
                    zuko.flows.UnconditionalTransform(
                        _lu_mixing, torch.zeros(features, features), torch.zeros(features)
                    )
                )
        base = zuko.flows.UnconditionalDistribution(
            DiagNormal, torch.zeros(features), torch.ones(features), buffer=True
        )
        super().__init__(layers, base)


FAMILIES: dict[str, type[zuko.flows.Flow]] = {
    "galacticflow": SplineCouplingFlow,
    "maf": zuko.flows.MAF,
    "nsf": zuko.flows.NSF,
    "nice": zuko.flows.NICE,
    "sospf": zuko.flows.SOSPF,
    "realnvp": zuko.flows.RealNVP,
}

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def build_flow(
    family: str,
    features: int,
    context: int = 0,
    *,
    transforms: int = 5,
    hidden: Sequence[int] = (128, 128),
    **kwargs,
) -> zuko.flows.Flow:
    """A zuko flow of the named family (``maf``, ``nsf``, ``nice``, ``sospf``, ``realnvp``,
    ``galacticflow`` = :class:`SplineCouplingFlow`).

    ``activation`` may be a name from :data:`ACTIVATIONS` (smooth ones give smooth gradients
    of log q, which matters when the density is differentiated). Autoregressive families get a random feature order per transform (``randperm``) so no
    feature is always conditioned on nothing.
    """
    family = family.lower()
    if family not in FAMILIES:
        raise ValueError(f"unknown flow family {family!r}; choose one of {sorted(FAMILIES)}")
    options = {"transforms": transforms, "hidden_features": tuple(hidden), **kwargs}
    if isinstance(options.get("activation"), str):
        options["activation"] = ACTIVATIONS[options["activation"]]
    if family in ("maf", "nsf", "sospf"):
        options.setdefault("randperm", True)
    return FAMILIES[family](features, context, **options)


class DensityEstimator(nn.Module):
    """A trained (or trainable) conditional density :math:`q(x \\mid c)`.

    Args:
        flow: zuko flow on standardised features, with ``context`` conditioning features.
        bijector: fixed map from ``x`` (N, D) to the flow's space, float64.
        context_norm: standardisation of the context (N, C), or ``None`` if unconditional.
        config: everything needed to rebuild the architecture (see :meth:`from_config`).
    """

    def __init__(
        self,
        flow: zuko.flows.Flow,
        bijector: Bijector,
        context_norm: Standardize | None,
        config: dict,
    ) -> None:
        super().__init__()
        self.flow, self.bijector, self.context_norm = flow, bijector, context_norm
        self.config = config
        self.history: TrainHistory | None = None

    @classmethod
    def from_config(cls, config: dict) -> DensityEstimator:
        """Architecture with untrained weights; load a ``state_dict`` into it."""
        flow = build_flow(
            config["family"], config["features"], config["context"], **config["flow_kwargs"]
        )
        context_norm = Standardize(config["context"]) if config["context"] else None
        return cls(flow, bijector_from_config(config["bijector"]), context_norm, config)

    def _context(self, context: torch.Tensor | None) -> torch.Tensor | None:
        if self.context_norm is None:
            if context is not None:
                raise ValueError("this estimator is unconditional but a context was given")
            return None
        if context is None:
            raise ValueError(
                f"this estimator needs a context with {self.config['context']} features"
            )
        context = torch.as_tensor(context, dtype=torch.float64)
        return self.context_norm(context)[0].float()

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """log q(x | c), float64, shape (N,). ``x``: (N, D); ``context``: (N, C) or ``None``."""
        x = torch.as_tensor(x, dtype=torch.float64)
        z, ladj = self.bijector(x)
        return self.flow(self._context(context)).log_prob(z.float()).double() + ladj

    @torch.no_grad()
    def sample(self, n: int, context: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` samples, float64: shape (n, D), or (n, M, D) for a context of shape (M, C)."""
        context = self._context(context)
        z = self.flow(context).base.rsample((n,))
        if context is not None and context.dim() > 1:
            context = context.expand(z.shape[:-1] + context.shape[-1:]).reshape(
                -1, context.shape[-1]
            )
        x = flow_inverse(self.flow, z.reshape(-1, z.shape[-1]), context).reshape(z.shape)
        return self.bijector.inverse(x.double())


def equal_mixture_log_prob(logs: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \frac{1}{K} \sum_k e^{\ell_k}` of component log-densities ``logs`` (K, N), (N,)."""
    return torch.logsumexp(logs, 0) - torch.log(torch.tensor(float(len(logs))))


def equal_mixture_sample(draw: Callable[[int, int], torch.Tensor], k: int, n: int) -> torch.Tensor:
    """``n`` draws of an equal mixture of ``k`` components, shuffled: component i contributes a
    multinomial share m_i, drawn as ``draw(i, m_i)`` (m_i, D)."""
    counts = torch.bincount(torch.randint(k, (n,)), minlength=k)
    parts = [draw(i, int(m)) for i, m in enumerate(counts) if m > 0]
    return torch.cat(parts)[torch.randperm(n)]


class DensityEnsemble(nn.Module):
    r"""Equal-weight mixture :math:`q(x) = \frac{1}{K}\sum_k q_k(x)` of density estimators."""

    def __init__(self, members: Sequence[DensityEstimator]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """log of the mixture density, shape (N,)."""
        return equal_mixture_log_prob(torch.stack([m.log_prob(x, context) for m in self.members]))

    @torch.no_grad()
    def sample(self, n: int, context: torch.Tensor | None = None) -> torch.Tensor:
        """Mixture samples: member k contributes a multinomial share of the ``n`` draws."""
        members = self.members
        return equal_mixture_sample(lambda i, m: members[i].sample(m, context), len(members), n)


class ContextMixture(nn.Module):
    r"""Equal mixture of one conditional density over K contexts of one object,

    .. math:: q(x) = \frac{1}{K} \sum_{k=1}^{K} q(x \mid c_k),

    for an object seen through K views (a galaxy's projections, each with its own image latent)
    when the estimator was trained with one view per sample. ``contexts``: (K, C), every row a
    component (a repeated row weighs as often as it appears); K = 1 is exactly ``estimator`` at
    that context, draws included.
    """

    def __init__(self, estimator: DensityEstimator, contexts: torch.Tensor) -> None:
        super().__init__()
        contexts = torch.as_tensor(contexts, dtype=torch.float64)
        if contexts.ndim != 2 or len(contexts) == 0:
            raise ValueError(f"contexts must have shape (K, C), K ≥ 1; got {tuple(contexts.shape)}")
        self.estimator = estimator
        self.register_buffer("contexts", contexts)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x), float64, shape (N,) for ``x`` (N, D)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        est = self.estimator
        return equal_mixture_log_prob(
            torch.stack([est.log_prob(x, c.expand(len(x), -1)) for c in self.contexts])
        )

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` draws (n, D): component k contributes a multinomial share of them."""
        if len(self.contexts) == 1:
            return self.estimator.sample(n, self.contexts[0])
        est, contexts = self.estimator, self.contexts
        return equal_mixture_sample(lambda i, m: est.sample(m, contexts[i]), len(contexts), n)


def fit_density(
    x: torch.Tensor,
    context: torch.Tensor | None = None,
    family: str = "maf",
    *,
    bijector: Bijector | None = None,
    transforms: int = 5,
    hidden: Sequence[int] = (128, 128),
    flow_kwargs: dict | None = None,
    epochs: int = 100,
    batch_size: int = 512,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    val_fraction: float = 0.1,
    validation: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    patience: int = 10,
    max_seconds: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> DensityEstimator:
    """Fit a conditional density :math:`q(x \\mid c)` by maximum likelihood and return it.

    Args:
        x: samples, shape (N, D), any float dtype and units.
        context: conditioning variables, shape (N, C), or ``None`` for an unconditional fit.
        family: zuko flow family name, see :data:`FAMILIES`.
        bijector: optional fixed problem-specific map applied before standardisation
            (e.g. :class:`~astrogen.models.bijectors.RadialLogCompression`).
        transforms, hidden, flow_kwargs: flow architecture.
        epochs, batch_size, lr, weight_decay, patience, max_seconds: see
            :func:`~astrogen.train.train_likelihood`.
        val_fraction: share of rows held out for early stopping.
        validation: explicit ``(x_val, context_val)`` for early stopping (e.g. held-out
            galaxies) instead of a random ``val_fraction`` of the rows; all of ``x`` then trains.
        seed: seeds the weights, the split and the shuffling.
        device: where to train (``"cuda"`` on a GPU); the returned estimator lives on the CPU.

    Returns:
        The estimator in its best-validation state, with ``.history`` (a
        :class:`~astrogen.train.TrainHistory`) attached.

    Example:
        >>> est = fit_density(torch.randn(2000, 2), epochs=2, progress=False)
        >>> est.log_prob(torch.zeros(1, 2)).shape
        torch.Size([1])
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    n, features = x.shape
    n_context = 0
    if context is not None:
        context = torch.as_tensor(context, dtype=torch.float64)
        if context.ndim != 2 or len(context) != n:
            raise ValueError(f"context must have shape ({n}, C), got {tuple(context.shape)}")
        n_context = context.shape[1]
    if validation is not None:
        x_val = torch.as_tensor(validation[0], dtype=torch.float64)
        c_val = (
            None if validation[1] is None else torch.as_tensor(validation[1], dtype=torch.float64)
        )
        train_idx, val_idx = torch.arange(n), torch.arange(n, n + len(x_val))
        x = torch.cat([x, x_val])
        context = None if context is None else torch.cat([context, c_val])
    else:
        train_idx, val_idx = split_indices(n, val_fraction, seed)
    torch.manual_seed(seed)

    pre = bijector if bijector is not None else Chain()
    with torch.no_grad():
        y, _ = pre(x[train_idx])
    full = Chain(pre, Standardize(features, y))
    config = {
        "family": family,
        "features": features,
        "context": n_context,
        "flow_kwargs": {"transforms": transforms, "hidden": list(hidden), **(flow_kwargs or {})},
        "bijector": full.config(),
    }
    context_norm = Standardize(n_context, context[train_idx]) if n_context else None
    flow = build_flow(family, features, n_context, **config["flow_kwargs"])
    estimator = DensityEstimator(flow, full, context_norm, config)

    # Pre-transform once: training runs on float32 features in the flow's own space.
    with torch.no_grad():
        z, _ = full(x)
        z = z.float().to(device)
        c = estimator.context_norm(context)[0].float().to(device) if n_context else None
    flow.to(device)

    def nll(zb: torch.Tensor, cb: torch.Tensor | None = None) -> torch.Tensor:
        return -flow(cb).log_prob(zb).mean()

    tensors = (z,) if c is None else (z, c)
    estimator.history = train_likelihood(
        flow,
        nll,
        [t[train_idx] for t in tensors],
        [t[val_idx] for t in tensors],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        patience=patience,
        max_seconds=max_seconds,
        seed=seed,
        progress=progress,
        desc=f"fit_density[{family}]",
    )
    flow.cpu()
    return estimator
