r"""Exact phase-space sampler and distribution function of the Plummer (1911) sphere.

The Plummer model is the standard cored system: its density is flat inside the scale radius b
where the Hernquist density has a 1/r cusp. Potential, density and enclosed mass are

.. math:: \Phi(r) = -\frac{GM}{\sqrt{r^2 + b^2}}, \qquad
          \rho(r) = \frac{3M}{4\pi b^3}\Big(1 + \frac{r^2}{b^2}\Big)^{-5/2}, \qquad
          M(<r) = M \frac{r^3}{(r^2 + b^2)^{3/2}}.

Its isotropic DF (Binney & Tremaine 2008, eq. 4.83), normalised to unit mass, in SI units
(m⁻⁶ s³), with binding energy :math:`\mathcal{E} = -\Phi - v^2/2`, is

.. math:: f(\mathcal{E}) = \frac{24\sqrt{2}}{7\pi^3} \frac{b^2}{(GM)^5}\, \mathcal{E}^{7/2}.

Sampling is exact and vectorised: radii by inverting :math:`M(<r)/M`, then at fixed radius
:math:`u = \mathcal{E}/\Psi` with :math:`\Psi = -\Phi(r)` has density
:math:`\propto u^{7/2}(1 - u)^{1/2}`, a Beta(9/2, 3/2) law, and the speed is
:math:`\sqrt{2\Psi(1 - u)}` in an isotropic direction. As for the Hernquist sets the sphere is
truncated at ``r_max`` (in units of b) and ``log_df`` is divided by the enclosed-mass fraction,
so it stays an exact normalised log-density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from astrogen.constants import KPC, M_SUN, G
from astrogen.sims.hernquist import random_unit_vectors
from astrogen.sims.spherical import SphericalScales

_LOG_DF_CONSTANT = float(np.log(24 * np.sqrt(2) / (7 * np.pi**3)))


@dataclass(frozen=True)
class PlummerSphere(SphericalScales):
    """A truncated isotropic Plummer sphere with its exact equilibrium DF.

    The same interface as :class:`~astrogen.sims.hernquist.HernquistSphere`, so the study's
    notebooks and the tests treat both alike.

    Args:
        mass: total (untruncated) mass M [kg].
        scale_radius: Plummer radius b [m].
        anisotropy: only ``"isotropic"`` (the DF above).
        r_max: truncation radius in units of ``b``.
    """

    mass: float = 1e10 * M_SUN
    scale_radius: float = 5 * KPC
    anisotropy: Literal["isotropic"] = "isotropic"
    r_max: float = 200.0

    def __post_init__(self) -> None:
        if self.anisotropy != "isotropic":
            raise ValueError(
                f"the Plummer sphere has only the 'isotropic' DF, got {self.anisotropy!r}"
            )
        self._check_positive()

    # ---- scales -------------------------------------------------------------------------------
    @property
    def truncated_fraction(self) -> float:
        """Mass fraction inside ``r_max``: :math:`x^3/(1 + x^2)^{3/2}` with x = r_max/b."""
        x = self.r_max
        return x**3 / (1.0 + x**2) ** 1.5

    # ---- analytic profiles (r in metres) ------------------------------------------------------
    def potential(self, r: np.ndarray) -> np.ndarray:
        """Φ(r) = -GM / √(r² + b²) [m²/s²]."""
        return -G * self.mass / np.hypot(np.asarray(r), self.scale_radius)

    def density(self, r: np.ndarray) -> np.ndarray:
        """Mass density ρ(r) [kg/m³] of the untruncated sphere."""
        x = np.asarray(r) / self.scale_radius
        return 3 * self.mass / (4 * np.pi * self.scale_radius**3) * (1 + x**2) ** -2.5

    def enclosed_mass(self, r: np.ndarray) -> np.ndarray:
        """M(<r) = M r³ / (r² + b²)^{3/2} [kg]."""
        r = np.asarray(r)
        return self.mass * r**3 / np.hypot(r, self.scale_radius) ** 3

    def acceleration(self, pos: np.ndarray) -> np.ndarray:
        """Exact acceleration -∇Φ = -GM x / (r² + b²)^{3/2}, shape (N, 3) [m/s²]."""
        pos = np.asarray(pos, dtype=np.float64)
        r = np.linalg.norm(pos, axis=-1, keepdims=True)
        return -G * self.mass * pos / np.hypot(r, self.scale_radius) ** 3

    def sigma_r2(self, r: np.ndarray) -> np.ndarray:
        """Velocity dispersion squared per component, σ² = GM / (6 √(r² + b²)) [m²/s²]."""
        return -self.potential(r) / 6

    def beta(self, r: np.ndarray) -> np.ndarray:
        """Velocity anisotropy β(r) = 0 (isotropic DF)."""
        return np.zeros_like(np.asarray(r, dtype=float))

    # ---- exact log-DF ---------------------------------------------------------------------------
    def log_df(self, pos: torch.Tensor, vel: torch.Tensor) -> torch.Tensor:
        """Exact normalised ln f(x, v) of the truncated sphere, differentiable.

        Args:
            pos: positions [m], shape (..., 3).
            vel: velocities [m/s], shape (..., 3).

        Returns:
            ln f [ln(m⁻⁶ s³)], shape (...); ``-inf`` for unbound stars or r > r_max.
        """
        pos = torch.as_tensor(pos, dtype=torch.float64)
        vel = torch.as_tensor(vel, dtype=torch.float64)
        b, gm = self.scale_radius, G * self.mass
        r2 = (pos**2).sum(-1)
        binding = gm / torch.sqrt(r2 + b**2) - 0.5 * (vel**2).sum(-1)
        bound = (binding > 0) & (r2 <= (self.r_max * b) ** 2)
        safe = torch.where(bound, binding, torch.ones_like(binding))
        log_f = (
            _LOG_DF_CONSTANT
            + 2 * np.log(b)
            - 5 * np.log(gm)
            + 3.5 * torch.log(safe)
            - np.log(self.truncated_fraction)
        )
        return torch.where(bound, log_f, torch.full_like(log_f, -torch.inf))

    # ---- exact sampling ---------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` stars exactly from the truncated DF.

        Returns:
            ``(pos, vel)``, each shape (n, 3), in metres and metres per second.
        """
        b = self.scale_radius
        # M(<r)/M = s  ⇔  r = b / √(s^(-2/3) - 1); s ≤ the truncated fraction keeps r ≤ r_max.
        s = rng.uniform(0.0, self.truncated_fraction, n)
        r = b / np.sqrt(s ** (-2 / 3) - 1)
        pos = r[:, None] * random_unit_vectors(n, rng)
        return pos, self._velocities(r, rng)

    def sample_velocities(self, pos: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` velocities [m/s] drawn exactly from f(v | x) at each position (M, 3) [m]: (M, n, 3)."""
        r = np.repeat(np.linalg.norm(np.asarray(pos, dtype=np.float64), axis=1), n)
        return self._velocities(r, rng).reshape(len(pos), n, 3)

    def _velocities(self, r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One isotropic velocity per star at radius r (N,) [m]."""
        psi = 1.0 / np.hypot(r / self.scale_radius, 1.0)  # Ψ in units of GM/b
        u = rng.beta(4.5, 1.5, len(r))
        speed = self.velocity_unit * np.sqrt(2 * psi * (1 - u))
        return speed[:, None] * random_unit_vectors(len(r), rng)
