r"""Fast inverses of zuko's masked autoregressive transforms, for sampling.

zuko inverts a masked autoregressive transform :math:`y_i = f(x_i \mid x_{<i}, c)` with
``passes`` full evaluations of its hyper-network, each followed by the inverse of every
univariate transform. For a fully autoregressive flow on D features that is D network passes,
and for the sum-of-squares polynomial flow (SOSPF) every univariate inverse is a 25-step
bisection on a Gauss–Legendre quadrature. :class:`IncrementalInverse` computes the same inverse
with one network evaluation in total: hidden units are grouped by the last *level* (group of
features inverted together) they depend on, and at level k only the units of level k are
computed, from the features and units already known. :func:`sos_polynomial_inverse` inverts the
SOS polynomial through its closed-form integral with a safeguarded Newton iteration, and
:func:`rqs_inverse` the rational-quadratic spline with its bins along the first axis.
:func:`flow_inverse` chains them through a whole flow, chunks of points on worker threads.

All are exact rewrites of the same maps (same weights, no retraining); they agree with zuko's
inverse to floating-point and bisection tolerance (``tests/test_flow_inverse.py``). Internally
tensors are feature-major, (features, N), so every block a level touches is contiguous.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import torch
import zuko
from torch import nn
from zuko.flows.polynomial import ShiftedSOSPTransform
from zuko.nn import MaskedLinear
from zuko.transforms import MonotonicRQSTransform
from zuko.utils import unpack

# Parameter-free element-wise activations: the only ones that act the same on a block of units.
ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Mish,
)  # fmt: skip


def _sos_coefficients(a: torch.Tensor, slope: float, bound: float) -> torch.Tensor:
    r"""Monomial coefficients :math:`p_m` (m = 0…2L+1) of :math:`P(t) = F(Bt)` for
    :math:`F(x) = \int_0^x \frac1K\sum_k (1 + \sum_j a_{kj} (u/B)^j)^2 du + s x`.

    With :math:`c_k = a_k + e_0`, the integrand is :math:`\frac1K\sum_k \sum_{i,j} c_{ki}
    c_{kj} t^{i+j} + s`, so :math:`p_{n+1} = \frac{B}{K(n+1)} \sum_k \sum_{i+j=n} c_{ki}c_{kj}`
    (+ sB for n = 0). ``a``: (K, L+1, M) → (2L+2, M) float64, accumulated in the precision of
    ``a`` (float32 in a flow, as zuko's own quadrature of the same integral).
    """
    k, n = a.shape[:2]
    c = [a[:, 0] + 1, *a[:, 1:].unbind(1)]  # (K, M) each
    p = a.new_zeros(2 * n, a.shape[-1])
    for i in range(n):
        for j in range(i, n):  # symmetric pairs once, off-diagonal ones counted twice
            for kk in range(k):
                p[i + j + 1].addcmul_(c[i][kk], c[j][kk], value=1.0 if i == j else 2.0)
    p[1:] *= bound / (k * torch.arange(1, 2 * n, dtype=a.dtype, device=a.device))[:, None]
    p = p.double()
    p[1] += slope * bound
    return p


def _horner(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P(t) and P'(t) for monomial coefficients ``p`` (degree + 1, N) at ``t`` (N,)."""
    value = p[-1].clone()
    derivative = torch.zeros_like(t)
    for m in range(len(p) - 2, -1, -1):
        derivative.mul_(t).add_(value)
        value.mul_(t).add_(p[m])
    return value, derivative


def sos_polynomial_inverse(
    a: torch.Tensor,
    shift: torch.Tensor,
    y: torch.Tensor,
    slope: float = 1e-3,
    bound: float = 10.0,
    tol: float = 1e-7,
    max_iter: int = 100,
    grid_points: int = 5,
) -> torch.Tensor:
    r"""Solve :math:`F(x) + \text{shift} = y` for zuko's shifted SOS polynomial transform.

    :math:`F` is a polynomial of degree 2L+1 with :math:`F' \ge s > 0`, so the root in
    :math:`[-B, B]` is unique; targets beyond :math:`F(\pm B)` give :math:`\pm B`, as zuko's
    bisection does, and NaN stays NaN. The integral is exact, as zuko's (L+1)-point
    Gauss–Legendre quadrature of the degree-2L integrand is. Newton steps that leave the current
    bracket are replaced by bisection (always convergent); the iteration runs in float64.

    Args:
        a: (K, L+1, M) polynomial coefficients, coefficient-major. shift, y: (M,).
        slope, bound: as in :class:`zuko.transforms.SOSPolynomialTransform`.
        tol: an element is done once its Newton step in t = x / B is below ``tol``.
        max_iter: iteration cap (bisection alone would need ~log2(2 / tol) ≈ 24).
        grid_points: size of the grid on [-1, 1] whose bracketing cell gives the start.

    Returns:
        x, shape (M,), dtype of ``y``.
    """
    p = _sos_coefficients(a, slope, bound)
    target = y.double() - shift.double()
    # Start from the secant in the cell of a coarse grid that brackets the root: Newton then
    # needs ~3 steps. Targets beyond P(±1) get the collapsed bracket [±1, ±1].
    grid = torch.linspace(-1.0, 1.0, grid_points, dtype=p.dtype, device=p.device)
    values = (grid[:, None] ** torch.arange(len(p), device=p.device)) @ p  # (G, M), increasing
    cell = torch.zeros_like(target, dtype=torch.long)
    for row in values[1:-1]:
        cell += row < target
    lo, hi = grid[cell], grid[cell + 1]
    f_lo, f_hi = values.gather(0, cell[None])[0], values.gather(0, cell[None] + 1)[0]
    t = lo + (target - f_lo) / (f_hi - f_lo) * (hi - lo)
    lo = torch.where(target >= values[-1], 1.0, lo)
    hi = torch.where(target <= values[0], -1.0, hi)
    t = t.clamp(lo, hi)
    root = torch.empty_like(target)
    active = torch.arange(len(target), device=target.device)
    for _ in range(max_iter):
        value, derivative = _horner(p, t)
        residual = value - target
        lo = torch.where(residual < 0, t, lo)
        hi = torch.where(residual > 0, t, hi)
        step = t - residual / derivative
        step = torch.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
        done = (step - t).abs() <= tol
        t = step
        n_done = int(done.sum())
        if n_done == len(t):
            break
        # Shrink to the unconverged rest once most are done; small sets are cheaper to keep.
        if 4 * n_done >= 3 * len(t) and len(t) > 4096:
            root[active[done]] = t[done]
            keep = torch.nonzero(~done).squeeze(1)
            active, t, lo, hi, target = (v[keep] for v in (active, t, lo, hi, target))
            p = p[:, keep]
    root[active] = t
    return torch.where(y.isnan(), y, (bound * root).to(y.dtype))


def rqs_inverse(
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    y: torch.Tensor,
    bound: float = 5.0,
    slope: float = 1e-3,
) -> torch.Tensor:
    r"""Inverse of zuko's :class:`~zuko.transforms.MonotonicRQSTransform`, bins-major.

    The same map as zuko's — unconstrained parameters squashed, widths and heights through a
    softmax into K bins on :math:`[-B, B]`, knot derivatives :math:`e^d` (1 at the ends),
    identity outside — computed with the bins along the first axis so every step reads
    contiguous rows (zuko's softmax over a last axis of 8 bins is ~15× slower on the CPU).

    Args:
        widths, heights: (K, M) unconstrained bin widths and heights. derivatives: (K-1, M).
        y: (M,). bound, slope: as in zuko.

    Returns:
        x, shape (M,).
    """
    log_slope = math.log(slope)
    knots = []
    for raw in (widths, heights):
        raw = raw / (1 + abs(2 * raw / log_slope))
        e = (raw - raw.amax(dim=0)).exp()
        cumulative = torch.cumsum(e / e.sum(dim=0), dim=0)
        knots.append(bound * (2 * torch.cat([torch.zeros_like(y)[None], cumulative]) - 1))
    horizontal, vertical = knots  # (K+1, M) each
    slopes = torch.ones_like(horizontal)
    slopes[1:-1] = (derivatives / (1 + abs(derivatives / log_slope))).exp()
    bins = len(widths)
    k = -torch.ones_like(y, dtype=torch.long)
    for row in vertical:
        k += row < y
    inside = (k >= 0) & (k < bins)
    k = (k % bins)[None]
    x0, x1 = horizontal.gather(0, k)[0], horizontal.gather(0, k + 1)[0]
    y0, y1 = vertical.gather(0, k)[0], vertical.gather(0, k + 1)[0]
    d0, d1 = slopes.gather(0, k)[0], slopes.gather(0, k + 1)[0]
    s = (y1 - y0) / (x1 - x0)
    dy = inside * (y - y0)
    curvature = d0 + d1 - 2 * s
    a = (y1 - y0) * (s - d0) + dy * curvature
    b = (y1 - y0) * d0 - dy * curvature
    c = -s * dy
    z = 2 * c / (-b - (b**2 - 4 * a * c).sqrt())
    return torch.where(inside, x0 + z * (x1 - x0), y)


class IncrementalInverse:
    r"""Inverse of a :class:`zuko.flows.MaskedAutoregressiveTransform` with one network pass.

    The transform's features are inverted level by level (level = zuko's ``order`` entry: D
    levels for a fully autoregressive transform, 2 for a coupling one). A hidden unit's level is
    the highest level among the features it sees, plus one (0 if it sees only the context), so
    it is final as soon as those features are. Units are sorted by level, making "everything
    known at level k" a prefix of each layer: level k computes one block of each layer from the
    prefixes below it, then the univariate parameters of the level-k features, then inverts them.
    The weights are copied at construction: rebuild after they change.

    Args:
        transform: the lazy transform; see :meth:`supports` for what its hyper-network may be.
    """

    def __init__(self, transform: zuko.flows.MaskedAutoregressiveTransform) -> None:
        if not self.supports(transform):
            raise ValueError(
                "the hyper-network must alternate masked linear layers and parameter-free "
                "element-wise activations, with feature levels given by an order"
            )
        self.univariate, self.shapes, self.total = (
            transform.univariate, transform.shapes, transform.total
        )  # fmt: skip
        layers = list(transform.hyper)
        linears = layers[::2]
        # In place where the activation allows it: hidden blocks are written once, then activated.
        self.activations = [copy.copy(m) for m in layers[1::2]]
        for m in self.activations:
            if hasattr(m, "inplace"):
                m.inplace = True
        levels = transform.order
        features = len(levels)
        self.n_levels = int(levels.max()) + 1
        self.feature_order = torch.argsort(levels, stable=True)
        self.feature_inverse = torch.argsort(self.feature_order)
        sorted_levels = levels[self.feature_order]
        self.feature_bounds = [int((sorted_levels < k).sum()) for k in range(self.n_levels + 1)]

        # Level of every unit, layer by layer; rows (units) and columns (inputs) sorted by level.
        first = linears[0]
        input_level = torch.cat([levels + 1, levels.new_zeros(first.in_features - features)])
        unit_level = (first.mask * input_level).amax(dim=1)
        perm = torch.argsort(unit_level, stable=True)
        weight = (first.weight * first.mask).detach()[perm]
        self.w_features, self.w_context = weight[:, self.feature_order], weight[:, features:]
        self.b_first = first.bias.detach()[perm, None]
        self.unit_bounds = [self._bounds(unit_level)]
        self.hidden: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in linears[1:-1]:
            level = (layer.mask * unit_level).amax(dim=1)
            perm_next = torch.argsort(level, stable=True)
            w = (layer.weight * layer.mask).detach()[perm_next][:, perm]
            self.hidden.append((w, layer.bias.detach()[perm_next, None]))
            unit_level, perm = level, perm_next
            self.unit_bounds.append(self._bounds(unit_level))

        last = linears[-1]
        rows = torch.arange(features * self.total).view(features, self.total)[self.feature_order]
        self.w_out = (last.weight * last.mask).detach()[rows.flatten()][:, perm]
        self.b_out = last.bias.detach()[rows.flatten(), None]
        out_level = (last.mask * unit_level).amax(dim=1)[rows].amax(dim=1)
        if not (out_level <= sorted_levels).all():
            raise ValueError("hyper-network outputs depend on features of their own level")

        # zuko's SOSPF builds partial(ShiftedSOSPTransform, slope=s) with parameter shapes
        # [(K, L+1), ()]: the coefficients, then the shift.
        self.sos_slope = None
        if isinstance(self.univariate, functools.partial) and (
            self.univariate.func is ShiftedSOSPTransform
        ):
            self.sos_slope = self.univariate.keywords.get("slope", 1e-3)

    @staticmethod
    def supports(transform: zuko.flows.MaskedAutoregressiveTransform) -> bool:
        """Whether the transform has feature levels (an ``order``; not an ``adjacency``) and a
        hyper-network of masked linear layers alternating with :data:`ELEMENTWISE` activations."""
        layers = list(transform.hyper)
        return (
            transform.order is not None
            and len(layers) >= 3
            and all(isinstance(m, MaskedLinear) for m in layers[::2])
            and all(type(m) in ELEMENTWISE for m in layers[1::2])
        )

    def _bounds(self, unit_level: torch.Tensor) -> list[int]:
        """Start of each level's block in the sorted units: bounds[k] = #units of level < k."""
        return [int((unit_level < k).sum()) for k in range(self.n_levels + 1)]

    def _invert_univariate(self, phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Invert the univariates of one level. phi: (n·total, N); y: (n, N) → (n, N)."""
        n, m = y.shape
        if self.sos_slope is not None:
            phi = phi.view(n, self.total, m).transpose(0, 1).reshape(self.total, n * m)
            a = phi[:-1].view(*self.shapes[0], n * m)
            return sos_polynomial_inverse(a, phi[-1], y.reshape(-1), self.sos_slope).view(n, m)
        if self.univariate is MonotonicRQSTransform:
            bins = self.shapes[0][0]
            phi = phi.view(n, self.total, m).transpose(0, 1).reshape(self.total, n * m)
            x = rqs_inverse(phi[:bins], phi[bins : 2 * bins], phi[2 * bins :], y.reshape(-1))
            return x.view(n, m)
        phi = unpack(phi.T.unflatten(-1, (n, self.total)), self.shapes)
        return self.univariate(*phi).inv(y.T).T

    def __call__(self, y: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """x with T(x | c) = y. ``y``: (N, D); ``context``: (N, C), (1, C), (C,) or ``None``."""
        if (context is None) != (self.w_context.shape[1] == 0):
            raise ValueError(
                f"this transform takes a context of {self.w_context.shape[1]} features, got "
                f"{None if context is None else tuple(context.shape)}"
            )
        y = y.T[self.feature_order]
        x = torch.empty_like(y)
        pre = self.b_first
        if context is not None:
            pre = pre + self.w_context @ context.reshape(-1, self.w_context.shape[1]).T
        hidden = [y.new_empty(len(self.b_first), y.shape[1])]
        hidden += [y.new_empty(len(b), y.shape[1]) for _, b in self.hidden]
        f = self.feature_bounds
        for k in range(self.n_levels):
            lo, hi = self.unit_bounds[0][k : k + 2]
            if hi > lo:
                block = hidden[0][lo:hi]
                torch.addmm(pre[lo:hi], self.w_features[lo:hi, : f[k]], x[: f[k]], out=block)
                block.copy_(self.activations[0](block))
            for i, (w, b) in enumerate(self.hidden):
                lo, hi = self.unit_bounds[i + 1][k : k + 2]
                if hi > lo:
                    known = self.unit_bounds[i][k + 1]
                    block = hidden[i + 1][lo:hi]
                    torch.addmm(b[lo:hi], w[lo:hi, :known], hidden[i][:known], out=block)
                    block.copy_(self.activations[i + 1](block))
            rows = slice(f[k] * self.total, f[k + 1] * self.total)
            known = self.unit_bounds[-1][k + 1]
            phi = torch.addmm(self.b_out[rows], self.w_out[rows, :known], hidden[-1][:known])
            x[f[k] : f[k + 1]] = self._invert_univariate(phi, y[f[k] : f[k + 1]])
        return x[self.feature_inverse].T


Step = IncrementalInverse | zuko.flows.LazyTransform
_STEPS: weakref.WeakKeyDictionary[zuko.flows.Flow, tuple[tuple, list[Step]]] = (
    weakref.WeakKeyDictionary()
)
_THREADS = threading.Lock()


def inverse_steps(flow: zuko.flows.Flow) -> list[Step]:
    """The flow's transforms in inverse order, masked autoregressive ones as
    :class:`IncrementalInverse` where :meth:`~IncrementalInverse.supports` allows.

    Cached per flow and rebuilt when any parameter or buffer changed (an optimiser step or
    ``load_state_dict`` bumps a tensor's version counter, a move to another device its storage),
    so repeated sampling pays the set-up once.
    """
    versions = tuple((t.data_ptr(), t._version) for t in (*flow.parameters(), *flow.buffers()))
    cached = _STEPS.get(flow)
    if cached is None or cached[0] != versions:
        steps = [
            IncrementalInverse(t)
            if isinstance(t, zuko.flows.MaskedAutoregressiveTransform)
            and IncrementalInverse.supports(t)
            else t
            for t in reversed(flow.transform.transforms)
        ]  # fmt: skip
        cached = _STEPS[flow] = (versions, steps)
    return cached[1]


def flow_inverse(
    flow: zuko.flows.Flow,
    z: torch.Tensor,
    context: torch.Tensor | None,
    chunk: int = 65_536,
    workers: int | None = None,
) -> torch.Tensor:
    """x = T⁻¹(z | c) through every transform of ``flow`` (see :func:`inverse_steps`).

    ``z``: (N, D); ``context``: (C,) or (1, C) shared by all rows, (N, C), or ``None``. Rows go
    in chunks of ``chunk``; on the CPU the chunks run on ``workers`` threads (default: torch's
    thread count), each with single-threaded kernels — the inverse is thousands of small
    operations, so spreading whole chunks over the cores beats splitting each operation, and the
    result does not depend on the number of workers. Calls from several threads take turns.
    Sampling only: no gradients flow through.
    """
    shared = context is None or context.dim() == 1 or len(context) == 1
    if not shared and len(context) != len(z):
        raise ValueError(f"context has {len(context)} rows for {len(z)} points")
    steps = inverse_steps(flow)

    @torch.no_grad()  # grad mode is per thread: set it in each worker
    def invert(start: int) -> torch.Tensor:
        if z.device.type == "cpu":
            torch.set_num_threads(1)
        x = z[start : start + chunk]
        c = context if shared else context[start : start + chunk]
        for step in steps:
            x = step(x, c) if isinstance(step, IncrementalInverse) else step(c).inv(x)
        return x

    starts = range(0, len(z), chunk)
    if z.device.type != "cpu" or not len(z):
        return torch.cat([invert(s) for s in starts]) if len(z) else z.clone()
    with _THREADS:
        previous = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(workers or previous) as pool:
                return torch.cat(list(pool.map(invert, starts)))
        finally:
            torch.set_num_threads(previous)
