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
    r"""Compress the radius of a 3-vector block logarithmically, keeping its direction.

    For :math:`x_{1:3}` with :math:`r = |x_{1:3}|`, :math:`y_{1:3} = x_{1:3}\, g(r)/r` with
    :math:`g(r) = s \ln(1 + r/s)`; other features pass unchanged. The Jacobian has eigenvalue
    :math:`g'(r) = 1/(1+r/s)` radially and :math:`g(r)/r` twice tangentially, so
    :math:`\log|\det J| = -\log(1 + r/s) + 2\log(g(r)/r)`. Power-law tails (e.g. ρ ∝ r⁻⁴)
    become exponential tails a flow can fit.

    Args:
        features: D, total number of features.
        scale: s, in the units of ``x`` (e.g. the data's median radius).
        start: index of the first of the three compressed features.
    """

    def __init__(self, features: int, scale: float, start: int = 0) -> None:
        super().__init__()
        if not 0 <= start <= features - 3:
            raise ValueError(f"start={start} leaves no 3-vector block in {features} features")
        self.features, self.start = features, start
        self.register_buffer("radial_scale", torch.tensor(float(scale), dtype=torch.float64))

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.start
        return x[..., :s], x[..., s : s + 3], x[..., s + 3 :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        head, block, tail = self._split(x)
        s = self.radial_scale
        r = block.norm(dim=-1, keepdim=True).clamp_min(1e-300 * s)
        ratio = torch.log1p(r / s) / (r / s)  # g(r)/r, → 1 as r → 0
        ladj = -torch.log1p(r / s) + 2 * torch.log(ratio)
        return torch.cat([head, block * ratio, tail], -1), ladj.squeeze(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        head, block, tail = self._split(y)
        s = self.radial_scale
        rho = block.norm(dim=-1, keepdim=True).clamp_min(1e-300 * s)
        r = s * torch.expm1(rho / s)
        return torch.cat([head, block * (r / rho), tail], -1)

    def config(self) -> dict:
        return {
            "name": "radial_log",
            "features": self.features,
            "scale": float(self.radial_scale),
            "start": self.start,
        }


class TangentialVelocityPower(Bijector):
    r"""Raise the tangential speed to a power, keeping radial velocities and all positions.

    With :math:`\hat r = x/|x|`, :math:`v_r = v\cdot\hat r` and :math:`v_t = v - v_r \hat r`,
    :math:`s = |v_t|`, the map is :math:`v_t \mapsto v_t\, g(s)/s` with
    :math:`g(s) = s_0 (s/s_0)^p`. Constant-anisotropy DFs have :math:`f \propto L^{-2\beta}`, an
    integrable cusp at :math:`v_t = 0`; :math:`p = 1 - \beta` turns it into a finite density.
    The Jacobian is block-triangular; its velocity block is a 2-D radial map in the tangential
    plane, so :math:`\log|\det J| = \log p + 2(p-1)\log(s/s_0)`.

    Args:
        features: D (positions at ``start:start+3``, velocities at ``start+3:start+6``).
        power: p > 0 (1 is the identity).
        scale: :math:`s_0`, a typical tangential speed in the units of ``v``.
        start: index of the first position feature.
    """

    def __init__(self, features: int, power: float, scale: float, start: int = 0) -> None:
        super().__init__()
        if not 0 <= start <= features - 6:
            raise ValueError(
                f"start={start} leaves no 6-D phase-space block in {features} features"
            )
        if not power > 0:
            raise ValueError(f"power must be positive, got {power}")
        self.features, self.start = features, start
        self.register_buffer("power", torch.tensor(float(power), dtype=torch.float64))
        self.register_buffer("speed_scale", torch.tensor(float(scale), dtype=torch.float64))

    def _decompose(self, x: torch.Tensor, exponent: torch.Tensor):
        s0, b = self.speed_scale, self.start
        pos, vel = x[..., b : b + 3], x[..., b + 3 : b + 6]
        r_hat = pos / pos.norm(dim=-1, keepdim=True)
        v_r = (vel * r_hat).sum(-1, keepdim=True)
        v_t = vel - v_r * r_hat
        s = v_t.norm(dim=-1, keepdim=True).clamp_min(1e-300 * s0)
        ratio = (s / s0) ** (exponent - 1)
        new = torch.cat([x[..., : b + 3], v_r * r_hat + v_t * ratio, x[..., b + 6 :]], -1)
        return new, s

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, s = self._decompose(x, self.power)
        p = self.power
        ladj = torch.log(p) + 2 * (p - 1) * torch.log(s / self.speed_scale)
        return y, ladj.squeeze(-1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._decompose(y, 1 / self.power)[0]

    def config(self) -> dict:
        return {
            "name": "tangential_power",
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
    if name == "tangential_power":
        return TangentialVelocityPower(**kwargs)
    raise ValueError(
        f"unknown bijector {name!r}; known: chain, standardize, bounded_logit, radial_log, tangential_power"
    )
