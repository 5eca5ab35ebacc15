r"""Fixed (non-trained) bijections applied before a flow, with exact log-Jacobians.

A density estimator models :math:`q(x) = p_{\rm flow}(T(x))\,|\det \partial T/\partial x|`; any
bijection :math:`T` keeps :math:`\log q` an exact, normalised log-density in the original units.
Each bijector maps ``x`` of shape (N, D) to ``(y, ladj)`` with ``ladj`` of shape (N,), works in
float64 and is rebuilt from :meth:`config` (its data-dependent numbers live in buffers).
"""

from __future__ import annotations

import torch
from torch import nn


class Bijector(nn.Module):
    """Base class: ``forward(x) -> (y, log|det J|)`` and ``inverse(y) -> x``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError


class Standardize(Bijector):
    r""":math:`y = (x - \mu)/\sigma` per feature; :math:`\log|\det J| = -\sum_d \log\sigma_d`.

    Args:
        features: D.
        x: optional data (N, D) from which :math:`\mu, \sigma` are set.
    """

    def __init__(self, features: int, x: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(features, dtype=torch.float64))
        self.features = features
        if x is not None:
            x = x.to(torch.float64)
            self.shift.copy_(x.mean(0))
            self.scale.copy_(x.std(0).clamp_min(1e-300))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = (x - self.shift) / self.scale
        return y, (-self.scale.log().sum()).expand(x.shape[:-1])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.scale + self.shift

    def config(self) -> dict:
        return {"name": "standardize", "features": self.features}

    def to_dict(self) -> dict:
        """The scaler as plain JSON: ``{"mean": [...], "std": [...]}``."""
        return {"mean": self.shift.tolist(), "std": self.scale.tolist()}

    @classmethod
    def from_dict(cls, record: dict) -> Standardize:
        """Inverse of :meth:`to_dict`."""
        mean = torch.as_tensor(record["mean"], dtype=torch.float64)
        std = torch.as_tensor(record["std"], dtype=torch.float64)
        if mean.shape != std.shape or mean.ndim != 1 or not bool((std > 0).all()):
            raise ValueError("a scaler needs equally long 'mean' and positive 'std' lists")
        scaler = cls(len(mean))
        scaler.shift.copy_(mean)
        scaler.scale.copy_(std)
        return scaler


class BoundedLogit(Bijector):
    r"""Map features bounded to :math:`(l_d, h_d)` onto the real line by a logit.

    :math:`y_d = \log(x_d - l_d) - \log(h_d - x_d)` for bounded features (others pass), so
    :math:`\log|\det J| = \sum_{d\,\rm bounded} \log(h_d - l_d) - \log(x_d - l_d) - \log(h_d - x_d)`.
    Points on a bound are moved 10⁻⁹ of the range inside it.

    Args:
        bounds: one ``(low, high)`` per feature, or ``None`` for an unbounded one.
    """

    def __init__(self, bounds: list) -> None:
        super().__init__()
        self.bounds = [
            None if b is None or b[0] is None else (float(b[0]), float(b[1])) for b in bounds
        ]
        lo = [b[0] if b else 0.0 for b in self.bounds]
        hi = [b[1] if b else 1.0 for b in self.bounds]
        self.register_buffer("low", torch.tensor(lo, dtype=torch.float64))
        self.register_buffer("high", torch.tensor(hi, dtype=torch.float64))
        self.register_buffer("mask", torch.tensor([b is not None for b in self.bounds]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = self.high - self.low
        xc = torch.minimum(torch.maximum(x, self.low + 1e-9 * width), self.high - 1e-9 * width)
        y = torch.log(xc - self.low) - torch.log(self.high - xc)
        ladj = torch.log(width) - torch.log(xc - self.low) - torch.log(self.high - xc)
        return torch.where(self.mask, y, x), torch.where(self.mask, ladj, 0.0).sum(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = self.low + (self.high - self.low) * torch.sigmoid(y)
        return torch.where(self.mask, x, y)

    def config(self) -> dict:
        return {"name": "bounded_logit", "bounds": [list(b) if b else None for b in self.bounds]}


class RadialLogCompression(Bijector):
    r"""Compress the radius of a 3-vector block, keeping its direction.

    For :math:`x_{1:3}` with :math:`r = |x_{1:3}|`, :math:`y_{1:3} = x_{1:3}\, g(r)/r` with
    :math:`g(r) = s \ln(1 + (r/s)^q)`; other features pass unchanged. The Jacobian has eigenvalue
    :math:`g'(r) = q (r/s)^{q-1} / (1 + (r/s)^q)` radially and :math:`g(r)/r` twice tangentially,
    so :math:`\log|\det J| = \log g'(r) + 2\log(g(r)/r)`.

    Outside :math:`s`, power-law tails (e.g. ρ ∝ r⁻⁴) become exponential tails a flow can fit.
    Inside, :math:`g \approx s (r/s)^q` multiplies the density by :math:`r^{3(1-q)}`: a central
    cusp ρ ∝ r^(-γ) becomes finite for :math:`q = 1 - γ/3` (``q = 1`` leaves it alone).

    Args:
        features: D, total number of features.
        scale: s, in the units of ``x`` (e.g. the data's median radius).
        start: index of the first of the three compressed features.
        inner_power: q ∈ (0, 1], the power of the map inside ``scale``.
    """

    def __init__(
        self, features: int, scale: float, start: int = 0, inner_power: float = 1.0
    ) -> None:
        super().__init__()
        if not 0 <= start <= features - 3:
            raise ValueError(f"start={start} leaves no 3-vector block in {features} features")
        if not 0 < inner_power <= 1:
            raise ValueError(f"inner_power must lie in (0, 1], got {inner_power}")
        self.features, self.start = features, start
        self.register_buffer("radial_scale", torch.tensor(float(scale), dtype=torch.float64))
        self.register_buffer("inner_power", torch.tensor(float(inner_power), dtype=torch.float64))

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.start
        return x[..., :s], x[..., s : s + 3], x[..., s + 3 :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        head, block, tail = self._split(x)
        s, q = self.radial_scale, self.inner_power
        r = block.norm(dim=-1, keepdim=True).clamp_min(1e-300 * s)
        log_u = torch.log(r / s)
        t = torch.exp(q * log_u)
        log_ratio = torch.log(torch.log1p(t)) - log_u  # log(g(r)/r); → (q-1) log(r/s) at r → 0
        log_slope = torch.log(q) + (q - 1) * log_u - torch.log1p(t)
        ladj = log_slope + 2 * log_ratio
        return torch.cat([head, block * torch.exp(log_ratio), tail], -1), ladj.squeeze(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        head, block, tail = self._split(y)
        s, q = self.radial_scale, self.inner_power
        rho = block.norm(dim=-1, keepdim=True).clamp_min(1e-300 * s)
        r = s * torch.expm1(rho / s) ** (1 / q)
        return torch.cat([head, block * (r / rho), tail], -1)

    def config(self) -> dict:
        return {
            "name": "radial_log",
            "features": self.features,
            "scale": float(self.radial_scale),
            "start": self.start,
            "inner_power": float(self.inner_power),
        }


class TangentialVelocityCore(Bijector):
    r"""Raise the tangential speed to a power below a scale, keep it above.

    With :math:`\hat r = x/|x|`, :math:`v_r = v\cdot\hat r`, :math:`v_t = v - v_r \hat r` and
    :math:`s = |v_t|`, the map is :math:`v_t \mapsto v_t\, g(s)/s` with
    :math:`g(s) = s^p (s + s_0)^{1-p}`: :math:`g \approx s_0^{1-p} s^p` for :math:`s \ll s_0` and
    :math:`g \approx s` for :math:`s \gg s_0`. A DF with :math:`f \propto L^{-2\beta}` has an
    integrable cusp at :math:`v_t = 0` that :math:`p = 1 - \beta` makes finite, while the bulk
    of the velocity distribution, and with it the shape of the energy surfaces, keeps its form.
    The velocity block of the Jacobian is a 2-D radial map in the tangential plane, so

    .. math:: \log|\det J| = 2(1-p)\log(1 + s_0/s) + \log\big(p + (1-p)\,s/(s + s_0)\big).

    The inverse solves :math:`g(s) = u` by Newton's method in :math:`\ln s` (``g`` is increasing
    and convex in :math:`\ln s`).

    Args:
        features: D (positions at ``start:start+3``, velocities at ``start+3:start+6``).
        power: p ∈ (0, 1] (1 is the identity).
        scale: :math:`s_0`, a typical tangential speed in the units of ``v``.
        start: index of the first position feature.
    """

    def __init__(self, features: int, power: float, scale: float, start: int = 0) -> None:
        super().__init__()
        if not 0 <= start <= features - 6:
            raise ValueError(
                f"start={start} leaves no 6-D phase-space block in {features} features"
            )
        if not 0 < power <= 1:
            raise ValueError(f"power must lie in (0, 1], got {power}")
        self.features, self.start = features, start
        self.register_buffer("power", torch.tensor(float(power), dtype=torch.float64))
        self.register_buffer("speed_scale", torch.tensor(float(scale), dtype=torch.float64))

    def _split(self, x: torch.Tensor):
        b = self.start
        pos, vel = x[..., b : b + 3], x[..., b + 3 : b + 6]
        r_hat = pos / pos.norm(dim=-1, keepdim=True)
        v_r = (vel * r_hat).sum(-1, keepdim=True)
        v_t = vel - v_r * r_hat
        return r_hat, v_r, v_t, v_t.norm(dim=-1, keepdim=True).clamp_min(1e-300 * self.speed_scale)

    def _join(self, x: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
        b = self.start
        return torch.cat([x[..., : b + 3], velocity, x[..., b + 6 :]], -1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r_hat, v_r, v_t, s = self._split(x)
        p, s0 = self.power, self.speed_scale
        log_ratio = (1 - p) * torch.log1p(s0 / s)  # log(g(s)/s)
        ladj = 2 * log_ratio + torch.log(p + (1 - p) * s / (s + s0))
        return self._join(x, v_r * r_hat + v_t * torch.exp(log_ratio)), ladj.squeeze(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        r_hat, v_r, u_t, u = self._split(y)
        p, s0 = self.power, self.speed_scale
        log_u = torch.log(u)
        # g(s) ≥ s and g(s) ≥ s0^(1-p) s^p, so the smaller asymptotic root lies left of the root.
        ell = torch.minimum(log_u, (log_u - (1 - p) * torch.log(s0)) / p)
        for _ in range(60):  # quadratic convergence: a handful of steps in practice
            s = torch.exp(ell)
            residual = p * ell + (1 - p) * torch.log(s + s0) - log_u
            ell = ell - residual / (p + (1 - p) * s / (s + s0))
            if not bool((residual.abs() > 1e-12 * log_u.abs().clamp_min(1.0)).any()):
                break
        return self._join(y, v_r * r_hat + u_t * torch.exp(ell) / u)

    def config(self) -> dict:
        return {
            "name": "tangential_core",
            "features": self.features,
            "power": float(self.power),
            "scale": float(self.speed_scale),
            "start": self.start,
        }


class Chain(Bijector):
    """Composition ``T_k ∘ … ∘ T_1``; log-determinants add."""

    def __init__(self, *bijectors: Bijector) -> None:
        super().__init__()
        self.bijectors = nn.ModuleList(bijectors)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ladj = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for b in self.bijectors:
            x, step = b(x)
            ladj = ladj + step
        return x, ladj

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for b in reversed(self.bijectors):
            y = b.inverse(y)
        return y

    def config(self) -> dict:
        return {"name": "chain", "bijectors": [b.config() for b in self.bijectors]}


def bijector_from_config(config: dict) -> Bijector:
    """Rebuild a bijector (buffers not yet loaded) from :meth:`Bijector.config`."""
    kwargs = {k: v for k, v in config.items() if k != "name"}
    name = config["name"]
    if name == "chain":
        return Chain(*(bijector_from_config(c) for c in kwargs["bijectors"]))
    if name == "standardize":
        return Standardize(**kwargs)
    if name == "bounded_logit":
        return BoundedLogit(**kwargs)
    if name == "radial_log":
        return RadialLogCompression(**kwargs)
    if name == "tangential_core":
        return TangentialVelocityCore(**kwargs)
    raise ValueError(
        f"unknown bijector {name!r}; known: chain, standardize, bounded_logit, radial_log, tangential_core"
    )
