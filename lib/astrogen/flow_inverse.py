r"""Fast inverses of zuko's masked autoregressive transforms, for sampling.

zuko inverts a masked autoregressive transform :math:`y_i = f(x_i \mid x_{<i}, c)` with
``passes`` full evaluations of its hyper-network, each followed by the inverse of every
univariate transform. For a fully autoregressive flow on D features that is D network passes,
and for the sum-of-squares polynomial flow (SOSPF) every univariate inverse is a 25-step
bisection on a Gauss–Legendre quadrature. :class:`IncrementalInverse` computes the same inverse
with one network evaluation in total: hidden units are grouped by the last *level* (group of
features inverted together) they depend on, and at level k only the units of level k are
computed, from the features and units already known. :func:`sos_polynomial_inverse` inverts the
SOS polynomial through its closed-form integral with a safeguarded Newton iteration.

Both are exact rewrites of the same maps (same weights, no retraining); they agree with zuko's
inverse to floating-point and bisection tolerance (``tests/test_flow_inverse.py``). Internally
tensors are feature-major, (features, N), so every block a level touches is contiguous.
"""

from __future__ import annotations

import copy
import functools
from concurrent.futures import ThreadPoolExecutor

import torch
import zuko
from torch import nn
from zuko.flows.polynomial import ShiftedSOSPTransform
from zuko.nn import MaskedLinear
from zuko.utils import unpack


def _sos_coefficients(a: torch.Tensor, slope: float, bound: float) -> torch.Tensor:
    r"""Monomial coefficients :math:`p_m` (m = 0…2L+1) of :math:`P(t) = F(Bt)` for
    :math:`F(x) = \int_0^x \frac1K\sum_k (1 + \sum_j a_{kj} (u/B)^j)^2 du + s x`.

    With :math:`c_k = a_k + e_0`, the integrand is :math:`\frac1K\sum_k \sum_{i,j} c_{ki}
    c_{kj} t^{i+j} + s`, so :math:`p_{n+1} = \frac{B}{K(n+1)} \sum_k \sum_{i+j=n} c_{ki}c_{kj}`
    (+ sB for n = 0). ``a``: (K, L+1, M) → (2L+2, M) float64.
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
    """P(t) and P'(t) for monomial coefficients ``p`` (M+1, N) at ``t`` (N,)."""
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
    bisection does. Newton steps that leave the current bracket are replaced by bisection
    (always convergent). Float64 internally; an element leaves the iteration once its step in
    t = x / B is below ``tol``.

    Args:
        a: (K, L+1, M) polynomial coefficients, coefficient-major. shift, y: (M,).
        slope, bound: as in :class:`zuko.transforms.SOSPolynomialTransform`.

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
    t = (lo + (target - f_lo) / (f_hi - f_lo) * (hi - lo)).clamp(-1.0, 1.0)
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
    return (bound * root).to(y.dtype)


class IncrementalInverse(nn.Module):
    r"""Inverse of a :class:`zuko.flows.MaskedAutoregressiveTransform` with one network pass.

    The transform's features are inverted level by level (level = zuko's ``order`` entry: D
    levels for a fully autoregressive transform, 2 for a coupling one). A hidden unit's level is
    the highest level among the features it sees, plus one (0 if it sees only the context), so
    it is final as soon as those features are. Units are sorted by level, making "everything
    known at level k" a prefix of each layer: level k computes one block of each layer from the
    prefixes below it, then the univariate parameters of the level-k features, then inverts them.

    Args:
        transform: the lazy transform; its hyper-network must alternate masked linear layers and
            activations (zuko's ``MaskedMLP`` without residual blocks).
    """

    def __init__(self, transform: zuko.flows.MaskedAutoregressiveTransform) -> None:
        super().__init__()
        self.univariate, self.shapes, self.total = (
            transform.univariate, transform.shapes, transform.total
        )
        if not self.supports(transform):
            raise ValueError("the hyper-network must alternate masked linear layers and activations")
        layers = list(transform.hyper)
        linears = layers[::2]
        # In place where the activation allows it: hidden blocks are written once, then activated.
        self.activations = nn.ModuleList(copy.copy(m) for m in layers[1::2])
        for m in self.activations:
            if hasattr(m, "inplace"):
                m.inplace = True
        levels = transform.order
        features = len(levels)
        self.n_levels = int(levels.max()) + 1
        feature_order = torch.argsort(levels, stable=True)
        self.register_buffer("feature_order", feature_order)
        self.register_buffer("feature_inverse", torch.argsort(feature_order))
        sorted_levels = levels[feature_order]
        self.feature_bounds = [int((sorted_levels < k).sum()) for k in range(self.n_levels + 1)]

        # Level of every unit, layer by layer; rows (units) and columns (inputs) sorted by level.
        first = linears[0]
        unit_level = (first.mask * torch.cat([levels + 1, levels.new_zeros(first.in_features - features)])).amax(dim=1)  # fmt: skip
        perm = torch.argsort(unit_level, stable=True)
        weight = (first.weight * first.mask).detach()[perm]
        self.register_buffer("w_features", weight[:, feature_order])
        self.register_buffer("w_context", weight[:, features:])
        self.register_buffer("b_first", first.bias.detach()[perm, None])
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
        rows = torch.arange(features * self.total).view(features, self.total)[feature_order]
        self.register_buffer("w_out", (last.weight * last.mask).detach()[rows.flatten()][:, perm])
        self.register_buffer("b_out", last.bias.detach()[rows.flatten(), None])
        out_level = (last.mask * unit_level).amax(dim=1)[rows].amax(dim=1)
        if not (out_level <= sorted_levels).all():
            raise ValueError("hyper-network outputs depend on features of their own level")

        self.sos_slope = None
        if isinstance(self.univariate, functools.partial) and (
            self.univariate.func is ShiftedSOSPTransform
        ):
            self.sos_slope = self.univariate.keywords.get("slope", 1e-3)

    @staticmethod
    def supports(transform: zuko.flows.MaskedAutoregressiveTransform) -> bool:
        """Whether the hyper-network is masked linear layers alternating with activations."""
        layers = list(transform.hyper)
        return len(layers) >= 3 and all(
            isinstance(m, MaskedLinear) == (i % 2 == 0) for i, m in enumerate(layers)
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
        phi = unpack(phi.T.unflatten(-1, (n, self.total)), self.shapes)
        return self.univariate(*phi).inv(y.T).T

    def forward(self, y: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """x with T(x | c) = y. ``y``: (N, D); ``context``: (N, C), (C,) or ``None``."""
        y = y.T[self.feature_order].contiguous()
        x = torch.empty_like(y)
        pre = self.b_first
        if context is not None and self.w_context.shape[1]:
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
            for i in range(len(hidden) - 1):
                w, b = self.hidden[i]
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


def flow_inverse(
    flow: zuko.flows.Flow,
    z: torch.Tensor,
    context: torch.Tensor | None,
    chunk: int = 65_536,
    workers: int | None = None,
) -> torch.Tensor:
    """x = T⁻¹(z | c) through every transform of ``flow``, masked autoregressive ones with
    :class:`IncrementalInverse` where it applies, others with their own inverse.

    ``z``: (N, D); ``context``: (C,) shared by all rows, (N, C), or ``None``. Rows go in chunks
    of ``chunk``; on the CPU the chunks run on ``workers`` threads (default: torch's thread
    count), each with single-threaded kernels — the inverse is thousands of small operations, so
    spreading whole chunks over the cores beats splitting each operation, and the result does
    not depend on the number of workers. Sampling only: no gradients flow through.
    """
    steps = [
        IncrementalInverse(t)
        if isinstance(t, zuko.flows.MaskedAutoregressiveTransform) and IncrementalInverse.supports(t)
        else t
        for t in reversed(flow.transform.transforms)
    ]
    shared = context is None or context.dim() == 1

    @torch.no_grad()  # grad mode is per thread: set it in each worker
    def invert(start: int) -> torch.Tensor:
        if z.device.type == "cpu":
            torch.set_num_threads(1)
        x = z[start : start + chunk]
        c = context if shared else context[start : start + chunk]
        for step in steps:
            x = step(x, c) if isinstance(step, IncrementalInverse) else step(c).inv(x)
        return x

    if not len(z):
        return z
    starts = range(0, len(z), chunk)
    if z.device.type != "cpu":
        return torch.cat([invert(s) for s in starts])
    previous = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers or previous) as pool:
            return torch.cat(list(pool.map(invert, starts)))
    finally:
        torch.set_num_threads(previous)
