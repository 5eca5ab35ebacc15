r"""SDSS-like g, r, i galaxy cutouts with known truth, and simulation suites with graded defects.

GANomaly rates simulated images by how anomalous they look against an observed sky. This module
makes both sides: :func:`render_sky` is the "observed" sky, :func:`render_suite` a simulation whose
defect (:data:`SUITES`) grows with a severity s ∈ [0, 1] and vanishes at s = 0, where the suite
draws exactly the sky's images from the same seed (common random numbers for every s).

**Images.** (N, 3, 64, 64) float32 in nanomaggies (ZP 22.5), bands g, r, i, pixels of
:data:`PIXEL_SCALE` = 0.396″. A galaxy is a de Vaucouleurs bulge plus an exponential disk, each
elliptical with its own axis ratio and a shared position angle, plus optional logarithmic spiral
arms and star-forming clumps in the disk plane. Every piece is a Gaussian (mean μ, covariance Σ in
pixels), so the whole galaxy is a Gaussian mixture whose Fourier transform is analytic:

.. math:: \hat I_b(f) = \Big[\sum_c F_{bc}\, e^{-2π^2 fᵀΣ_c f - 2πi f·μ_c}\Big]
          \hat M_b(f)\, \mathrm{sinc}(f_x)\,\mathrm{sinc}(f_y),

with f in cycles per pixel. :math:`\hat M_b` is the Moffat PSF (β = 3, FWHM per image and band):
for a profile ∝ (1 + r²/a²)^{-β} the normalised transform is 2(x/2)^{β-1} K_{β-1}(x)/Γ(β-1),
x = 2πa|f|, i.e. (x²/2) K_0(x) + x K_1(x) at β = 3. The sincs are the pixel's top-hat, so
pixels are exact integrals up to aliasing above the pixel Nyquist frequency (≲ 10⁻³ of the peak for
FWHM ≥ 1.2″). Images are synthesised by an inverse real FFT on a periodic 96² grid and cropped to
the central 64²; the total flux on the grid is exact (the f = 0 term).

Profiles as Gaussian mixtures (amplitudes a_k, variances v_k r_e², ∑ a_k = 1):

* disk, n = 1: :data:`astrogen.sims.sersic.SERSIC_MIXTURES` [1], enclosed flux within 3·10⁻⁴ of
  the exponential's;
* bulge, n = 4: :data:`DEV_MIXTURE`, 10 Gaussians fitted (non-negative least squares in the
  amplitudes, least squares in log v_k) to the de Vaucouleurs enclosed-flux curve on
  0.02 < r/r_e < 8. It follows the profile to 4·10⁻⁴ relative inside 8 r_e and drops the wings
  beyond (like SDSS's truncated deV model): the mixture holds :data:`DEV_TOTAL` = 0.9613 of the
  untruncated profile's flux, so with total flux F the flux within R ≤ 8 r_e is
  F γ(8, b R^{1/4}) / DEV_TOTAL (γ the regularised incomplete gamma function).

**Sky** (:func:`sample_population`, all draws in that order so that defects never change them):
r magnitudes dN/dm ∝ 10^{0.45 m} on 14 < r < 17.7 (SDSS main spectroscopic sample); B/T
logit-normal with a brighter-is-bulgier mean; disk half-light radius on a size–luminosity relation
(R ∝ L^{1/2}, 0.15 dex scatter), bulge radius ≈ half of it; random inclinations of disks of
intrinsic thickness 0.12, bulges rounder; bulges red (g−r ≈ 0.80), disks blue (g−r ≈ 0.50),
clumps bluer still; arms and clumps only on resolved disk-dominated galaxies; per-image PSF
FWHM (r band uniform on 1.3–1.6″, g 4 % wider, i 3 % narrower) and white Gaussian sky noise of
:data:`SKY_SIGMA` × 10^{±0.1} per band. The galaxy's own photon noise is neglected (sky-limited).

**RGB** (:func:`to_rgb`): i → R, r → G, g → B, Lupton et al. (2004) asinh stretch of the mean
intensity, colour-preserving saturation, float32 in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.special import expit

from astrogen.sims.sersic import SERSIC_MIXTURES
from astrogen.stretch import LuptonStretch

BANDS = ("g", "r", "i")
PIXEL_SCALE = 0.396  # arcsec per pixel (SDSS)
ZERO_POINT = 22.5  # nanomaggies
STAMP_SIZE = 64
RENDER_SIZE = 96  # periodic synthesis grid; the stamp is its centre, the margin takes the wings
MOFFAT_BETA = 3.0
MAG_RANGE = (14.0, 17.7)  # r band
COUNT_SLOPE = 0.45  # d log10 N / dm
PSF_FWHM_RANGE = (1.3, 1.6)  # r band, arcsec
PSF_BAND_FACTOR = np.array([1.04, 1.0, 0.97])  # g, r, i relative to r
SKY_SIGMA = np.array([0.022, 0.028, 0.040])  # nanomaggies per pixel, g, r, i (≈ SDSS frames)
DISK_THICKNESS = 0.12  # intrinsic axis ratio of an edge-on disk
ARM_BLOBS = 10  # Gaussians per spiral arm
MAX_ARMS = 3
MAX_CLUMPS = 6
RESOLVED_RADIUS = 2.0  # arcsec: disks larger than this may show arms and clumps
# i, r, g multipliers 1, 1.2, 1.8 (balance g), q = 8, linear range 0.5 nanomaggies
SKY_STRETCH = LuptonStretch(q=8.0, soft=0.5, scales=(1.0, 1.2, 1.8))
PARTICLES_AT_FULL = 300  # star particles per galaxy at severity 1 of the "particles" suite
MAX_PARTICLES = 200_000
_BATCH = 64  # images per rendering batch: 64 × 52 components × 96 × 49 complex64 ≈ 125 MB

# de Vaucouleurs mixture fitted as described in the module docstring; amplitudes sum to 1.
DEV_TOTAL = 0.9612957125
# fmt: off
DEV_MIXTURE = (
    np.array(
        [
            0.0027689422,
            0.0057278523,
            0.014431398,
            0.0324405753,
            0.0638911909,
            0.108882178,
            0.1582972934,
            0.1936777525,
            0.2009473839,
            0.1802311462,
        ]
    )
    / DEV_TOTAL,
    np.array(
        [
            7.4571423865e-05,
            3.5075678756e-04,
            1.3493275376e-03,
            4.9978180854e-03,
            1.8027306196e-02,
            6.3698303710e-02,
            2.2223423442e-01,
            7.7726014770e-01,
            2.8638454166e00,
            1.4112444394e01,
        ]
    ),
)
# fmt: on
EXP_MIXTURE = SERSIC_MIXTURES[1]


@dataclass(frozen=True)
class Defects:
    """How a simulation departs from the sky; the defaults are the sky itself.

    ``size_scale`` multiplies every radius; ``bt_logit_shift`` is added to logit(B/T);
    ``bulge_colour_shift`` and ``disk_colour_shift`` are added to (g−r, r−i) of the bulge and of
    the disk (arms and clumps follow the disk); ``structure_scale`` multiplies the arm and clump
    light fractions; ``particles`` renders each galaxy from that many star particles (None:
    smooth); ``psf_scale`` and ``noise_scale`` multiply the PSF FWHM and the sky σ.
    """

    size_scale: float = 1.0
    bt_logit_shift: float = 0.0
    bulge_colour_shift: tuple[float, float] = (0.0, 0.0)
    disk_colour_shift: tuple[float, float] = (0.0, 0.0)
    structure_scale: float = 1.0
    particles: int | None = None
    psf_scale: float = 1.0
    noise_scale: float = 1.0


def _particles(s: float) -> Defects:
    """N = 300 / s² star particles (at most 200 000); smooth at s = 0."""
    if s == 0:
        return Defects()
    return Defects(particles=int(min(PARTICLES_AT_FULL / s**2, MAX_PARTICLES)))


# suite name → severity s ∈ [0, 1] → defects; every suite is the sky at s = 0
SUITES: dict[str, Callable[[float], Defects]] = {
    "compact": lambda s: Defects(size_scale=10 ** (-0.4 * s)),  # radii × 0.4 at s = 1
    "bulgy": lambda s: Defects(bt_logit_shift=3.0 * s),
    "colours": lambda s: Defects(  # bulge bluer, disk redder: the colour gradient flips
        bulge_colour_shift=(-0.35 * s, -0.20 * s), disk_colour_shift=(0.25 * s, 0.12 * s)
    ),
    "smooth": lambda s: Defects(structure_scale=1.0 - s),
    "particles": _particles,
    "psf": lambda s: Defects(psf_scale=1.0 + 0.5 * s),
    "noise": lambda s: Defects(noise_scale=1.0 + 2.0 * s),
}


def mag_to_flux(mag: np.ndarray) -> np.ndarray:
    """Nanomaggies: F = 10^{-0.4 (m − 22.5)}."""
    return 10 ** (-0.4 * (np.asarray(mag, dtype=float) - ZERO_POINT))


def moffat_fwhm_to_scale(fwhm: np.ndarray) -> np.ndarray:
    """Moffat core radius a from the FWHM: FWHM = 2a √(2^{1/β} − 1)."""
    return np.asarray(fwhm) / (2 * np.sqrt(2 ** (1 / MOFFAT_BETA) - 1))


def sample_population(
    n: int, rng: np.random.Generator, defects: Defects = Defects()
) -> dict[str, np.ndarray]:
    r"""Draw n galaxies and their observing conditions; every array has length n (or (n, k)).

    With z ~ N(0, 1) independent and dm = r − 16:

    * r ~ dN/dm ∝ 10^{0.45 m} on 14 < r < 17.7;
    * logit(B/T) = −1.0 − 0.35 dm + 1.1 z (+ ``bt_logit_shift``);
    * disk r_e = 3.2″ · 10^{−0.2 dm + 0.15 z} clipped to [0.8″, 12″], bulge r_e = disk r_e ·
      10^{−0.3 + 0.1 z}, both × ``size_scale``; r_e is the half-light radius along the major axis;
    * cos i ~ U(0, 1), disk q = √(q₀² + (1 − q₀²) cos² i), bulge q = q_d + (1 − q_d) Beta(4, 1.5);
      position angle θ ~ U(0, π) shared;
    * bulge (g−r, r−i) = (0.80 ± 0.04, 0.42 ± 0.03), disk (0.50 ± 0.10, 0.28 ± 0.06) (+ shifts),
      arms 0.10 / 0.05 and clumps 0.25 / 0.12 bluer than the disk;
    * resolved disks (intrinsic disk r_e > 2″, B/T < 0.6): arms with probability 0.8 (2 arms, or
      3 with probability 0.3), pitch U(12°, 28°), arm light fraction U(0.15, 0.35) of the disk;
      Poisson(3) clumps (≤ 6) holding U(0.02, 0.08) of the disk light; fractions ×
      ``structure_scale``;
    * r-band PSF FWHM U(1.3″, 1.6″) × (1.04, 1, 0.97) per band × ``psf_scale``; sky σ =
      :data:`SKY_SIGMA` · 10^{0.1 z} per band × ``noise_scale``; sub-pixel centre offset U(−½, ½).
    """
    lo, hi = MAG_RANGE
    beta = COUNT_SLOPE * np.log(10)
    r_mag = lo + np.log1p(rng.uniform(size=n) * np.expm1(beta * (hi - lo))) / beta
    z = rng.standard_normal((8, n))
    dm = r_mag - 16.0
    bt = expit(-1.0 - 0.35 * dm + 1.1 * z[0] + defects.bt_logit_shift)
    disk_re_intrinsic = np.clip(3.2 * 10 ** (-0.2 * dm + 0.15 * z[1]), 0.8, 12.0)
    disk_re = disk_re_intrinsic * defects.size_scale
    bulge_re = disk_re * 10 ** (-0.3 + 0.1 * z[2])
    cos_i = rng.uniform(size=n)
    disk_q = np.sqrt(DISK_THICKNESS**2 + (1 - DISK_THICKNESS**2) * cos_i**2)
    bulge_q = disk_q + (1 - disk_q) * rng.beta(4.0, 1.5, n)
    angle = rng.uniform(0, np.pi, n)
    bulge_colour = (
        np.stack([0.80 + 0.04 * z[3], 0.42 + 0.03 * z[4]], 1) + defects.bulge_colour_shift
    )
    disk_colour = np.stack([0.50 + 0.10 * z[5], 0.28 + 0.06 * z[6]], 1) + defects.disk_colour_shift

    resolved = (disk_re_intrinsic > RESOLVED_RADIUS) & (bt < 0.6)
    u = rng.uniform(size=(3, n))
    n_arms = np.where(resolved & (u[0] < 0.8), np.where(u[1] < 0.3, 3, 2), 0)
    pitch = np.radians(rng.uniform(12.0, 28.0, n))
    arm_phase = rng.uniform(0, 2 * np.pi, n)
    arm_fraction = np.where(n_arms > 0, rng.uniform(0.15, 0.35, n), 0.0)
    n_clumps = np.where(resolved, np.minimum(rng.poisson(3.0, n), MAX_CLUMPS), 0)
    clump_fraction = np.where(n_clumps > 0, rng.uniform(0.02, 0.08, n), 0.0)
    # clump positions in the disk plane, in units of the disk r_e: r e^{-r/h} surface density
    clump_radius = np.minimum(rng.gamma(2.0, 1 / 1.678, (n, MAX_CLUMPS)), 2.5)
    clump_phi = rng.uniform(0, 2 * np.pi, (n, MAX_CLUMPS))

    psf_fwhm = rng.uniform(*PSF_FWHM_RANGE, n)[:, None] * PSF_BAND_FACTOR * defects.psf_scale
    sky_sigma = SKY_SIGMA * 10 ** (0.1 * rng.standard_normal((n, 3))) * defects.noise_scale
    offset = rng.uniform(-0.5, 0.5, (n, 2))
    return {
        "mag_r": r_mag,
        "bulge_to_total": bt,
        "disk_re": disk_re,
        "bulge_re": bulge_re,
        "disk_q": disk_q,
        "bulge_q": bulge_q,
        "inclination": np.arccos(cos_i),
        "position_angle": angle,
        "bulge_g_r": bulge_colour[:, 0],
        "bulge_r_i": bulge_colour[:, 1],
        "disk_g_r": disk_colour[:, 0],
        "disk_r_i": disk_colour[:, 1],
        "n_arms": n_arms,
        "pitch_angle": pitch,
        "arm_phase": arm_phase,
        "arm_fraction": arm_fraction * defects.structure_scale,
        "n_clumps": n_clumps,
        "clump_fraction": clump_fraction * defects.structure_scale,
        "clump_radius": clump_radius,
        "clump_phi": clump_phi,
        "psf_fwhm": psf_fwhm,
        "sky_sigma": sky_sigma,
        "offset": offset,
    }


def _band_fluxes(flux_r: np.ndarray, g_r: np.ndarray, r_i: np.ndarray) -> np.ndarray:
    """(g, r, i) fluxes, shape (..., 3), from r-band fluxes and colours of matching shape."""
    return np.stack([flux_r * 10 ** (-0.4 * g_r), flux_r, flux_r * 10 ** (0.4 * r_i)], -1)


def galaxy_components(
    pop: dict[str, np.ndarray], pixel_scale: float = PIXEL_SCALE, size: int = RENDER_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The Gaussian mixture of every galaxy: C = 16 + 3·10 + 6 = 52 components.

    Returns ``means`` (N, C, 2) (x, y) in pixels of a ``size``² grid (galaxy centre at pixel
    size/2 plus its offset), ``cov`` (N, C, 3) (Σ_xx, Σ_xy, Σ_yy) in px², ``flux`` (N, 3, C) in
    nanomaggies per band. Unused arm and clump slots have zero flux.

    A shape of axis ratio q at position angle θ has Σ = s² R_θ diag(1, q²) R_θᵀ; disk-plane
    points (x′, y′) land at R_θ (x′, q y′). Arm k's blobs sit on the logarithmic spiral
    φ = φ₀ + 2πk/n_arms + ln(ρ/ρ₀)/tan p at ρ/r_e log-spaced on [0.35, 2.2], weighted by
    ρ² e^{−1.678 ρ/r_e} (exponential light per unit ln ρ), width 0.12 ρ + 0.2″.
    """
    n = len(pop["mag_r"])
    scale = 1 / pixel_scale
    c, s = np.cos(pop["position_angle"]), np.sin(pop["position_angle"])

    def rotate(x, y, q):
        """Disk-plane (x′, y′) → sky pixels, broadcasting over trailing axes."""
        q = q[:, None]
        return c[:, None] * x - s[:, None] * q * y, s[:, None] * x + c[:, None] * q * y

    def covariance(width2, q):
        """(Σ_xx, Σ_xy, Σ_yy) of width² (N, K) along the major axis at axis ratio q (N,)."""
        q2 = (q**2)[:, None]
        return np.stack(
            [
                width2 * (c**2)[:, None] + width2 * q2 * (s**2)[:, None],
                width2 * (1 - q2) * (s * c)[:, None],
                width2 * (s**2)[:, None] + width2 * q2 * (c**2)[:, None],
            ],
            -1,
        )

    disk_r = pop["disk_re"] * scale
    cov_disk = covariance(EXP_MIXTURE[1] * disk_r[:, None] ** 2, pop["disk_q"])
    cov_bulge = covariance(DEV_MIXTURE[1] * (pop["bulge_re"] * scale)[:, None] ** 2, pop["bulge_q"])

    rho = np.geomspace(0.35, 2.2, ARM_BLOBS)  # units of the disk r_e
    arm = np.arange(MAX_ARMS)
    n_arms = np.maximum(pop["n_arms"], 1)[:, None, None]
    phi = (
        pop["arm_phase"][:, None, None]
        + 2 * np.pi * arm[None, :, None] / n_arms
        + np.log(rho / rho[0])[None, None, :] / np.tan(pop["pitch_angle"])[:, None, None]
    ).reshape(n, -1)
    rho_px = (rho[None, :] * disk_r[:, None])[:, None, :].repeat(MAX_ARMS, 1).reshape(n, -1)
    arm_xy = rotate(rho_px * np.cos(phi), rho_px * np.sin(phi), pop["disk_q"])
    arm_width = 0.12 * rho_px + 0.2 * scale
    blob_weight = rho**2 * np.exp(-1.678 * rho)
    blob_weight = np.tile(blob_weight / blob_weight.sum(), MAX_ARMS)[None, :] * (
        np.repeat(arm, ARM_BLOBS)[None, :] < pop["n_arms"][:, None]
    )
    blob_weight = blob_weight / np.maximum(pop["n_arms"], 1)[:, None]

    clump_rho = pop["clump_radius"] * disk_r[:, None]
    clump_xy = rotate(
        clump_rho * np.cos(pop["clump_phi"]), clump_rho * np.sin(pop["clump_phi"]), pop["disk_q"]
    )
    clump_weight = (np.arange(MAX_CLUMPS)[None, :] < pop["n_clumps"][:, None]) / np.maximum(
        pop["n_clumps"], 1
    )[:, None]
    clump_width2 = np.full((n, MAX_CLUMPS), (0.3 * scale) ** 2)

    centre = size / 2 + pop["offset"]  # (N, 2)
    k_smooth = len(EXP_MIXTURE[0]) + len(DEV_MIXTURE[0])
    means = (
        np.concatenate(
            [
                np.zeros((n, k_smooth, 2)),
                np.stack(arm_xy, -1),
                np.stack(clump_xy, -1),
            ],
            1,
        )
        + centre[:, None, :]
    )
    cov = np.concatenate(
        [
            cov_disk,
            cov_bulge,
            covariance(arm_width**2, pop["disk_q"]),
            covariance(clump_width2, pop["disk_q"]),
        ],
        1,
    )

    flux_r = mag_to_flux(pop["mag_r"])
    bulge = _band_fluxes(flux_r * pop["bulge_to_total"], pop["bulge_g_r"], pop["bulge_r_i"])
    disk_r_flux = flux_r * (1 - pop["bulge_to_total"])
    smooth = 1 - pop["arm_fraction"] - pop["clump_fraction"]
    disk = _band_fluxes(disk_r_flux * smooth, pop["disk_g_r"], pop["disk_r_i"])
    arms = _band_fluxes(
        disk_r_flux * pop["arm_fraction"], pop["disk_g_r"] - 0.10, pop["disk_r_i"] - 0.05
    )
    clumps = _band_fluxes(
        disk_r_flux * pop["clump_fraction"], pop["disk_g_r"] - 0.25, pop["disk_r_i"] - 0.12
    )
    flux = np.concatenate(
        [
            disk[:, :, None] * EXP_MIXTURE[0],
            bulge[:, :, None] * DEV_MIXTURE[0],
            arms[:, :, None] * blob_weight[:, None, :],
            clumps[:, :, None] * clump_weight[:, None, :],
        ],
        2,
    )
    return means, cov, flux


def _frequencies(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """f_y (size, 1) and f_x (1, size//2 + 1) in cycles per pixel, the rfft2 layout."""
    return torch.fft.fftfreq(size)[:, None], torch.fft.rfftfreq(size)[None, :]


def psf_transform(
    psf_fwhm: np.ndarray, size: int, pixel_scale: float = PIXEL_SCALE
) -> torch.Tensor:
    """Moffat (β = 3) × pixel top-hat transfer function, (N, 3, size, size//2 + 1) float32.

    ``psf_fwhm`` (N, 3) in arcsec; FWHM 0 is no PSF (the pixel response only).
    """
    fy, fx = _frequencies(size)
    a = torch.as_tensor(moffat_fwhm_to_scale(psf_fwhm) / pixel_scale, dtype=torch.float32)
    x = 2 * np.pi * a[:, :, None, None] * torch.sqrt(fx**2 + fy**2)
    x = x.clamp_min(1e-6)  # x K_1(x) → 1 as x → 0
    moffat = x**2 / 2 * torch.special.modified_bessel_k0(x) + x * torch.special.modified_bessel_k1(
        x
    )
    return moffat * torch.sinc(fx) * torch.sinc(fy)


def _render_mixture(
    means: np.ndarray, cov: np.ndarray, flux: np.ndarray, transfer: torch.Tensor, size: int
) -> torch.Tensor:
    """∑_c F_bc × Gaussian_c convolved with ``transfer``, (N, 3, size, size) on a periodic grid."""
    fy, fx = _frequencies(size)
    m = torch.as_tensor(means, dtype=torch.float32)[..., None, None]
    v = torch.as_tensor(cov, dtype=torch.float32)[..., None, None]
    real = -2 * np.pi**2 * (v[:, :, 0] * fx**2 + 2 * v[:, :, 1] * fx * fy + v[:, :, 2] * fy**2)
    # the shift e^{-2πi f·μ} factorises into x and y parts: trigonometry on 1-D axes only
    shift_x = torch.polar(torch.ones(()), -2 * np.pi * m[:, :, 0] * fx)
    shift_y = torch.polar(torch.ones(()), -2 * np.pi * m[:, :, 1] * fy)
    components = torch.exp(real) * shift_x * shift_y  # (N, C, size, size//2 + 1)
    weights = torch.as_tensor(flux, dtype=torch.complex64)
    spectrum = torch.bmm(weights, components.flatten(2)).view(transfer.shape) * transfer
    return torch.fft.irfft2(spectrum, s=(size, size))


def _render_particles(
    means: np.ndarray,
    cov: np.ndarray,
    flux: np.ndarray,
    transfer: torch.Tensor,
    size: int,
    n_particles: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    r"""The mixture sampled by ``n_particles`` star particles per galaxy, like :func:`_render_mixture`.

    Particles are drawn from the r-band light (component c with probability F_rc / F_r, then
    N(μ_c, Σ_c)); each carries F_r / N in r and its component's colour in g and i, so the
    expected image is the smooth one and the rest is shot noise. Particles are binned on a grid
    of half pixels (periodic), whose DFT at the pixel grid's frequencies is their transform up to
    a ±¼ px position jitter (variance 1/48 px², < 1 % of the PSF's).
    """
    n, n_comp = means.shape[:2]
    weight = flux[:, 1] / flux[:, 1].sum(1, keepdims=True)
    cumulative = np.cumsum(weight, 1)
    cumulative[:, -1] = 1.0
    galaxy = np.repeat(np.arange(n), n_particles)
    pick = np.searchsorted(
        (cumulative + np.arange(n)[:, None]).ravel(), galaxy + rng.uniform(size=galaxy.size)
    )
    pick = np.minimum(pick, n * n_comp - 1)
    mu, sigma = means.reshape(-1, 2)[pick], cov.reshape(-1, 3)[pick]
    l11 = np.sqrt(sigma[:, 0])
    l21 = sigma[:, 1] / l11
    l22 = np.sqrt(np.maximum(sigma[:, 2] - l21**2, 0.0))
    z = rng.standard_normal((2, galaxy.size))
    x = mu[:, 0] + l11 * z[0]
    y = mu[:, 1] + l21 * z[0] + l22 * z[1]
    fine = 2 * size
    # cell m covers [m/2 − ½, (m + 1)/2 − ½) px, so its centre is at m/2 − ¼
    cx = np.floor(2 * (x + 0.5)).astype(np.int64) % fine
    cy = np.floor(2 * (y + 0.5)).astype(np.int64) % fine
    colour = flux.reshape(n, 3, -1).transpose(0, 2, 1).reshape(-1, 3)[pick]
    colour = colour / colour[:, 1:2] * (flux[:, 1].sum(1) / n_particles)[galaxy, None]
    cells = np.zeros((n, 3, fine * fine))
    flat = galaxy * fine * fine + cy * fine + cx
    for band in range(3):
        cells[:, band] = np.bincount(flat, colour[:, band], n * fine * fine).reshape(n, -1)
    spectrum = torch.fft.rfft2(
        torch.as_tensor(cells.reshape(n, 3, fine, fine), dtype=torch.float32)
    )
    rows = torch.cat([torch.arange(size // 2), torch.arange(fine - size // 2, fine)])
    spectrum = spectrum[:, :, rows, : size // 2 + 1]
    fy, fx = _frequencies(size)
    shift = torch.polar(torch.ones(()), 2 * np.pi * 0.25 * (fx + fy))  # cell centres at m/2 − ¼
    return torch.fft.irfft2(spectrum * shift * transfer, s=(size, size))


def render_noiseless(
    pop: dict[str, np.ndarray],
    *,
    pixel_scale: float = PIXEL_SCALE,
    size: int = RENDER_SIZE,
    crop: int | None = STAMP_SIZE,
    particles: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """PSF-convolved, pixel-integrated images of ``pop``, (N, 3, crop, crop) float32 nanomaggies.

    Rendered on a periodic ``size``² grid and cropped to its central ``crop``² (None: no crop).
    ``particles``: star particles per galaxy drawn with ``rng`` (None: the smooth profiles).
    """
    n = len(pop["mag_r"])
    crop = size if crop is None else crop
    start = (size - crop) // 2
    out = np.empty((n, 3, crop, crop), dtype=np.float32)
    step = _BATCH if particles is None else max(1, 2_000_000 // particles)
    for lo in range(0, n, step):
        batch = {k: v[lo : lo + step] for k, v in pop.items()}
        means, cov, flux = galaxy_components(batch, pixel_scale, size)
        transfer = psf_transform(batch["psf_fwhm"], size, pixel_scale)
        if particles is None:
            image = _render_mixture(means, cov, flux, transfer, size)
        else:
            image = _render_particles(means, cov, flux, transfer, size, particles, rng)
        out[lo : lo + step] = image[:, :, start : start + crop, start : start + crop].numpy()
    return out


def to_rgb(images: np.ndarray, stretch: LuptonStretch = SKY_STRETCH) -> np.ndarray:
    """Lupton et al. (2004) colour images from (N, 3, H, W) g, r, i: (N, 3, H, W) R, G, B in [0, 1]
    (:class:`astrogen.stretch.LuptonStretch`, the sky's parameters by default)."""
    return stretch.to_rgb(images)


def _truth(pop: dict[str, np.ndarray], particles: int | None) -> pd.DataFrame:
    """Per-galaxy ground truth, one row per image (per-band columns suffixed _g, _r, _i)."""
    columns = {k: v for k, v in pop.items() if v.ndim == 1}
    # arms and clumps are bluer than the disk they are carved from: total = the sum of all pieces
    total = galaxy_components(pop, size=8)[2].sum(2)
    for b, band in enumerate(BANDS):
        columns[f"mag_{band}"] = ZERO_POINT - 2.5 * np.log10(total[:, b])
        columns[f"psf_fwhm_{band}"] = pop["psf_fwhm"][:, b]
        columns[f"sky_sigma_{band}"] = pop["sky_sigma"][:, b]
    columns["offset_x"], columns["offset_y"] = pop["offset"].T
    columns["n_particles"] = np.full(len(total), np.inf if particles is None else particles)
    return pd.DataFrame(columns)


def _render(n: int, rng: np.random.Generator, defects: Defects) -> tuple[np.ndarray, pd.DataFrame]:
    """Population, image and noise draws from three independent streams spawned from ``rng``."""
    population_rng, particle_rng, noise_rng = rng.spawn(3)
    pop = sample_population(n, population_rng, defects)
    images = render_noiseless(pop, particles=defects.particles, rng=particle_rng)
    noise = noise_rng.standard_normal(images.shape, dtype=np.float32)
    images += noise * pop["sky_sigma"][:, :, None, None].astype(np.float32)
    return images, _truth(pop, defects.particles)


def render_sky(n: int, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """n "observed" cutouts (N, 3, 64, 64) float32 g, r, i nanomaggies, and their truth."""
    return _render(n, rng, Defects())


def render_suite(
    name: str, severity: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, pd.DataFrame]:
    """n cutouts of suite ``name`` (a key of :data:`SUITES`) at ``severity`` ∈ [0, 1], and truth.

    At severity 0 the images equal :func:`render_sky`'s for an identically seeded ``rng``; any
    severity uses the same underlying draws, so suites differ only by their defect.
    """
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; choose from {sorted(SUITES)}")
    if not 0 <= severity <= 1:
        raise ValueError(f"severity must lie in [0, 1], got {severity}")
    return _render(n, rng, SUITES[name](severity))
