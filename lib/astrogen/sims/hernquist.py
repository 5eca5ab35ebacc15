r"""Exact phase-space samplers and distribution functions of the Hernquist (1990) sphere.

The Hernquist model has potential and density

.. math:: \Phi(r) = -\frac{GM}{r + a}, \qquad \rho(r) = \frac{M}{2\pi}\frac{a}{r (r + a)^3}.

Two equilibrium distribution functions (DFs) are provided, both normalised to unit mass
(:math:`\int f \, d^3x \, d^3v = 1`), in SI units, so :math:`f` has units m⁻⁶ s³:

* ``"isotropic"`` — the ergodic DF :math:`f(\mathcal{E})` of Hernquist (1990, eq. 17), with
  binding energy :math:`\mathcal{E} = -\Phi - v^2/2` and :math:`\epsilon = \mathcal{E} a / GM`,

  .. math:: f = \frac{1}{\sqrt{2}(2\pi)^3 (GMa)^{3/2}}
            \frac{3\arcsin\sqrt\epsilon + \sqrt{\epsilon(1-\epsilon)}(1-2\epsilon)
            (8\epsilon^2-8\epsilon-3)}{(1-\epsilon)^{5/2}}.

* ``"beta_half"`` — the constant-anisotropy (β = 1/2) DF used by An, Naik, Evans & Burrage
  (2021), :math:`f = 3a\,\mathcal{E}^2 / (4\pi^3 (GM)^3 L)` with :math:`L = |x \times v|`.

Sampling is exact and vectorised (no MCMC): radii by inverting :math:`M(<r)/M = r^2/(r+a)^2`,
then velocities at fixed radius — by rejection in :math:`\epsilon` for the isotropic DF and by
inverse-CDF in the :math:`(v_r, v_t)` half-plane for β = 1/2. Following the seed data sets, the
sphere is truncated at ``r_max`` (in units of ``a``); the truncated DF is :math:`f` divided by the
enclosed-mass fraction, so ``log_df`` stays an exact normalised log-density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from astrogen.constants import KPC, M_SUN, G
from astrogen.sims.spherical import SphericalScales

Anisotropy = Literal["isotropic", "beta_half"]


def _ergodic_numerator(eps: torch.Tensor) -> torch.Tensor:
    r""":math:`h(\epsilon) = 3\arcsin\sqrt\epsilon + \sqrt{\epsilon(1-\epsilon)}(1-2\epsilon)(8\epsilon^2-8\epsilon-3)`.

    The leading terms cancel to :math:`O(\epsilon^{5/2})`, so small arguments use the series
    :math:`\tfrac{128}{5}\epsilon^{5/2} - \tfrac{192}{7}\epsilon^{7/2} + \tfrac{16}{3}\epsilon^{9/2}`.
    """
    small = eps < 1e-3
    e_big = torch.where(small, torch.full_like(eps, 0.5), eps)
    exact = 3 * torch.arcsin(torch.sqrt(e_big)) + torch.sqrt(e_big * (1 - e_big)) * (
        1 - 2 * e_big
    ) * (8 * e_big**2 - 8 * e_big - 3)
    e_small = torch.where(small, eps, torch.zeros_like(eps))
    series = torch.sqrt(e_small) ** 5 * (128 / 5 - 192 / 7 * e_small + 16 / 3 * e_small**2)
    return torch.where(small, series, exact)


@dataclass(frozen=True)
class HernquistSphere(SphericalScales):
    """A truncated Hernquist sphere with an exact equilibrium DF.

    Args:
        mass: total (untruncated) mass M [kg].
        scale_radius: scale radius a [m].
        anisotropy: ``"isotropic"`` or ``"beta_half"``.
        r_max: truncation radius in units of ``a``.
    """

    mass: float = 1e10 * M_SUN
    scale_radius: float = 5 * KPC
    anisotropy: Anisotropy = "isotropic"
    r_max: float = 200.0

    def __post_init__(self) -> None:
        if self.anisotropy not in ("isotropic", "beta_half"):
            raise ValueError(
                f"anisotropy must be 'isotropic' or 'beta_half', got {self.anisotropy!r}"
            )
        self._check_positive()

    # ---- scales -------------------------------------------------------------------------------
    @property
    def truncated_fraction(self) -> float:
        """Mass fraction inside ``r_max``: :math:`r_{max}^2/(r_{max}+1)^2` (r in units of a)."""
        return (self.r_max / (self.r_max + 1.0)) ** 2

    # ---- analytic profiles (r in metres) ------------------------------------------------------
    def potential(self, r: np.ndarray) -> np.ndarray:
        """Φ(r) = -GM/(r + a) [m²/s²]."""
        return -G * self.mass / (np.asarray(r) + self.scale_radius)

    def density(self, r: np.ndarray) -> np.ndarray:
        """Mass density ρ(r) [kg/m³] of the untruncated sphere."""
        r = np.asarray(r)
        a = self.scale_radius
        return self.mass * a / (2 * np.pi * r * (r + a) ** 3)

    def enclosed_mass(self, r: np.ndarray) -> np.ndarray:
        """M(<r) = M r²/(r + a)² [kg]."""
        r = np.asarray(r)
        return self.mass * r**2 / (r + self.scale_radius) ** 2

    def acceleration(self, pos: np.ndarray) -> np.ndarray:
        """Exact acceleration -∇Φ = -GM x̂ / (r + a)², shape (N, 3) [m/s²]."""
        pos = np.asarray(pos, dtype=np.float64)
        r = np.linalg.norm(pos, axis=-1, keepdims=True)
        return -G * self.mass * pos / (r * (r + self.scale_radius) ** 2)

    def sigma_r2(self, r: np.ndarray) -> np.ndarray:
        """Radial velocity dispersion squared σ_r²(r) [m²/s²].

        Isotropic: Hernquist (1990) eq. 10. β = 1/2: σ_r² = GM / (4 (r + a)), from the DF.
        """
        x = np.asarray(r) / self.scale_radius
        vg2 = self.velocity_unit**2
        if self.anisotropy == "beta_half":
            return vg2 / (4 * (1 + x))
        return (vg2 / 12) * (
            12 * x * (1 + x) ** 3 * np.log1p(1 / x)
            - x / (1 + x) * (25 + 52 * x + 42 * x**2 + 12 * x**3)
        )

    def beta(self, r: np.ndarray) -> np.ndarray:
        """Velocity anisotropy β(r) = 1 - σ_t²/(2σ_r²)."""
        return np.full_like(
            np.asarray(r, dtype=float), 0.5 if self.anisotropy == "beta_half" else 0.0
        )

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
        a, gm = self.scale_radius, G * self.mass
        r = pos.norm(dim=-1)
        binding = gm / (r + a) - 0.5 * (vel**2).sum(-1)
        eps = binding * a / gm
        bound = (eps > 0) & (r <= self.r_max * a)
        eps_safe = torch.where(bound, eps, torch.full_like(eps, 0.5))
        if self.anisotropy == "isotropic":
            h = _ergodic_numerator(eps_safe)
            log_f = (
                torch.log(h)
                - 2.5 * torch.log1p(-eps_safe)
                - np.log(np.sqrt(2) * (2 * np.pi) ** 3 * (gm * a) ** 1.5)
            )
        else:
            ang_mom = torch.linalg.cross(pos, vel).norm(dim=-1)
            log_f = (
                np.log(3 * a / (4 * np.pi**3 * gm**3))
                + 2 * torch.log(eps_safe * gm / a)
                - torch.log(ang_mom)
            )
        log_f = log_f - np.log(self.truncated_fraction)
        return torch.where(bound, log_f, torch.full_like(log_f, -torch.inf))

    # ---- exact sampling ---------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` stars exactly from the truncated DF.

        Returns:
            ``(pos, vel)``, each shape (n, 3), in metres and metres per second.
        """
        a = self.scale_radius
        s = np.sqrt(rng.uniform(0.0, self.truncated_fraction, n))
        r = a * s / (1 - s)
        r_hat = random_unit_vectors(n, rng)
        return r[:, None] * r_hat, self._velocities(r, r_hat, rng)

    def sample_velocities(self, pos: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` velocities [m/s] drawn exactly from f(v | x) at each position (M, 3) [m]: (M, n, 3)."""
        pos = np.asarray(pos, dtype=np.float64)
        r = np.repeat(np.linalg.norm(pos, axis=1), n)
        r_hat = np.repeat(pos / np.linalg.norm(pos, axis=1, keepdims=True), n, axis=0)
        return self._velocities(r, r_hat, rng).reshape(len(pos), n, 3)

    def _velocities(self, r: np.ndarray, r_hat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One velocity per star at radius r (N,) [m] in direction r_hat (N, 3)."""
        n = len(r)
        psi = 1.0 / (1.0 + r / self.scale_radius)
        if self.anisotropy == "isotropic":
            eps = _sample_ergodic_energy(psi, rng)
            speed = self.velocity_unit * np.sqrt(2 * (psi - eps))
            vel = speed[:, None] * random_unit_vectors(n, rng)
        else:
            # Uniform angle in the (v_r, v_t) half-plane; u = w²/(2Ψ) has density 3(1-u)².
            u = 1 - (1 - rng.uniform(size=n)) ** (1 / 3)
            w = self.velocity_unit * np.sqrt(2 * psi * u)
            eta = rng.uniform(0, np.pi, n)
            phi = rng.uniform(0, 2 * np.pi, n)
            e2, e3 = _orthonormal_complement(r_hat, rng)
            v_t = w * np.sin(eta)
            vel = (w * np.cos(eta))[:, None] * r_hat + v_t[:, None] * (
                np.cos(phi)[:, None] * e2 + np.sin(phi)[:, None] * e3
            )
        return vel


def random_unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` isotropically distributed unit vectors, shape (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _orthonormal_complement(
    r_hat: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing ``r_hat`` (N, 3) to a right-handed orthonormal basis."""
    trial = random_unit_vectors(len(r_hat), rng)
    e2 = np.cross(r_hat, trial)
    e2 /= np.linalg.norm(e2, axis=1, keepdims=True)
    return e2, np.cross(r_hat, e2)


def _sample_ergodic_energy(psi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Sample ε | ψ for the isotropic DF by rejection, vectorised over stars.

    Target :math:`p(\epsilon|\psi) \propto \sqrt{\psi-\epsilon}\, h(\epsilon)(1-\epsilon)^{-5/2}`
    on [0, ψ]; proposal :math:`\propto (1-\epsilon)^{-5/2}` (inverse CDF in closed form) absorbs
    the central divergence; acceptance :math:`\sqrt{1-\epsilon/\psi}\, h(\epsilon)/h(\psi)` ≤ 1
    because h increases monotonically.
    """
    eps = np.empty_like(psi)
    todo = np.arange(len(psi))
    tries = 8
    while todo.size:
        p = np.repeat(psi[todo], tries)
        top = (1 - p) ** -1.5 - 1
        e = 1 - (1 + rng.uniform(size=p.size) * top) ** (-2 / 3)
        h_e = _ergodic_numerator(torch.from_numpy(e)).numpy()
        h_p = _ergodic_numerator(torch.from_numpy(p)).numpy()
        accept = rng.uniform(size=p.size) * h_p < np.sqrt(np.clip(1 - e / p, 0, None)) * h_e
        accept = accept.reshape(todo.size, tries)
        first = accept.argmax(axis=1)
        done = accept[np.arange(todo.size), first]
        eps[todo[done]] = e.reshape(todo.size, tries)[done, first[done]]
        todo = todo[~done]
    return eps


def add_multiplicative_noise(
    pos: np.ndarray, vel: np.ndarray, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Scale every phase-space component by an independent N(1, level²) factor (as the seed did)."""
    return (
        pos * rng.normal(1.0, level, size=pos.shape),
        vel * rng.normal(1.0, level, size=vel.shape),
    )
