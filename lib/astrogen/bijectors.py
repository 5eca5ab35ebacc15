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


class Chain(Bijector):
    """Composition ``T_k ∘ … ∘ T_1``; log-determinants add."""

    def __init__(self, *bijectors: Bijector) -> None:
        super().__init__()
        self.bijectors = nn.ModuleList(bijectors)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ladj = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for b in self.bijectors:
            x, l = b(x)
            ladj = ladj + l
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
    if name == "radial_log":
        return RadialLogCompression(**kwargs)
    raise ValueError(f"unknown bijector {name!r}; known: chain, standardize, radial_log")

