r"""The Lupton et al. (2004) asinh colour stretch of g, r, i cutouts, and its inverse.

Forward (:meth:`LuptonStretch.to_rgb`): channels X = scales · (i, r, g) (R, G, B), clipped at
0; with the mean intensity I = (X_R + X_G + X_B)/3 every channel becomes

.. math:: p_c = X_c \, \frac{\operatorname{asinh}(q I / \beta)}{q I},

and a pixel whose brightest channel exceeds 1 is divided by it (saturation keeps the hue).
The mean of the stretched channels is therefore p̄ = asinh(qI/β)/q wherever nothing saturates.

Inverse (:meth:`LuptonStretch.to_flux`): I = β sinh(q p̄)/q and X_c = p_c I / p̄, then
band flux = X_c / scale_c. It is exact up to the 8-bit quantisation (a step in p of 1/255 is a
relative step in flux of q cosh(q p̄)/(255 sinh(q p̄)), ≈ 3 % at p̄ = ½ for q = 8) except where
(i) a channel was negative (sky noise clipped at 0 stays 0) and (ii) a pixel saturated, where
only the hue survives and the flux returned is a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LuptonStretch:
    """Parameters of the stretch: ``q`` (softening), ``soft`` β (flux of the linear range, in
    the bands' units) and ``scales`` (multipliers of i, r, g before the stretch)."""

    q: float = 8.0
    soft: float = 0.5
    scales: tuple[float, float, float] = (1.0, 1.2, 1.8)

    def to_rgb(self, bands: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) g, r, i fluxes → (N, 3, H, W) R, G, B float32 in [0, 1]."""
        scales = np.asarray(self.scales, dtype=np.float32)[:, None, None]
        rgb = np.clip(bands[:, ::-1] * scales, 0, None)
        intensity = rgb.mean(1, keepdims=True)
        gain = np.arcsinh(self.q * intensity / self.soft) / (self.q * np.maximum(intensity, 1e-12))
        rgb = rgb * np.where(intensity > 0, gain, 0.0)
        rgb /= np.maximum(rgb.max(1, keepdims=True), 1.0)
        return rgb.astype(np.float32)

    def to_flux(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) R, G, B in [0, 1] (or uint8 0–255) → (N, 3, H, W) float64 fluxes of the
        (i, r, g) bands in the channels' order R, G, B; 0 where every channel is 0."""
        p = np.asarray(rgb, np.float64)
        if np.asarray(rgb).dtype == np.uint8:
            p = p / 255.0
        mean = p.mean(1, keepdims=True)
        intensity = self.soft * np.sinh(self.q * mean) / self.q
        ratio = np.divide(intensity, mean, out=np.zeros_like(mean), where=mean > 0)
        return p * ratio / np.asarray(self.scales, np.float64)[:, None, None]
