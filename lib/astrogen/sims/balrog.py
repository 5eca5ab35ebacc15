r"""Mini-Balrog: inject deep-field galaxies into simulated r, i, z survey images and measure them.

Balrog (Suchyta et al. 2016; Everett et al. 2022) measures a survey's transfer function
p(observed | true, conditions) by injecting galaxies with known truth into real images and
running the survey's own detection and photometry on them. This module does the same on
simulated images, cheaply enough for a few hundred thousand injections.

**Sky.** :class:`SurveyFootprint` is a rectangular patch whose observing conditions vary
smoothly: per band, the PSF FWHM (Gaussian PSF, 0.7–1.3″) and the per-pixel sky noise σ_sky,
calibrated by the 10σ point-source depth. For a Gaussian PSF of width σ_psf,
optimal (PSF-weighted) photometry of a background-limited point source has S/N = F / (σ_sky
√A), with the effective noise area A = 4π σ_psf² (pixels), so

.. math:: m_{10} = \mathrm{ZP} - 2.5 \log_{10}\big(10\, σ_{\rm sky} \sqrt{4π σ_{\rm psf}^2}\big)

(:func:`point_source_depth`). The depths span :data:`DEPTH_RANGES` (DES-wide-like).

**Truth.** :func:`sample_deep_catalogue` draws deep-field galaxies: i-band counts
dN/dm ∝ 10^{0.33 m} on 18 < i < 25.5; red (de Vaucouleurs, n = 4) and blue (exponential, n = 1)
populations whose mix, colours, sizes and axis ratios depend on magnitude.

**Images.** Each Sérsic profile is a mixture of K = 6 concentric elliptical Gaussians
(:data:`astrogen.sims.sersic.SERSIC_MIXTURES`, fitted to the n = 1 and n = 4 Sérsic laws in the
manner of Hogg & Lang 2013). Convolution with the Gaussian PSF adds σ_psf² to every component's
covariance, and the pixel's top-hat response adds 1/12 px² per axis (its exact second moment),
so each stamp is a sum of Gaussians sampled at pixel centres. That conserves the total flux to
≈ 2 e^{-2π²σ²} < 10⁻⁸ for σ ≥ 1 px (Poisson summation) and gives each pixel's exact integral
to O(σ⁻⁴): 0.1 % of the peak at the sharpest PSF (σ = 1.13 px).
The sky adds white Gaussian noise of σ_sky (sky-limited; the galaxy's own photon noise is
neglected). Around each injection, neighbours from the same deep-field distribution land at
random positions (:data:`NEIGHBOUR_DENSITY` per arcmin²), so blends occur at a realistic rate.

**Measurement** (:func:`measure`), Source Extractor via ``sep`` in dual-image mode: detect on
the noise-weighted riz sum (unit noise per pixel) at :data:`DETECT_THRESH` σ with
:data:`DETECT_MINAREA` pixels, the default matched filter and deblending; take the detection
nearest to the injected position within :data:`MATCH_RADIUS`; measure every band in the Kron
ellipse of the detection image (MAG_AUTO: :data:`KRON_FACTOR` × the Kron radius, a circle of
:data:`KRON_MIN_RADIUS` px when that ellipse is smaller, pixels of other detected objects masked).
Kron apertures hold ≈ 98 % of an exponential's light and ≈ 85 % of a de Vaucouleurs', so
MAG_AUTO is fainter than the total — a real bias the emulator has to learn. Fluxes are measured
in flux space and may be negative; magnitudes are ZP − 2.5 log10(flux) for flux > 0 and NaN
otherwise. Undetected injections have NaN fluxes, errors and magnitudes.
``sep`` runs on one stamp at a time, in a tight loop after a batch is rendered.

Units: fluxes are linear with ZP = 30 (m = 30 − 2.5 log10 F); angles in arcsec on the sky and
pixels of :data:`PIXEL_SCALE` in images; positions (ra, dec) in degrees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import sep
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from astrogen.sims.sersic import SERSIC_MIXTURES

BANDS = ("r", "i", "z")
PIXEL_SCALE = 0.263  # arcsec per pixel (DECam)
ZERO_POINT = 30.0  # magnitude of unit flux
FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))

DEPTH_RANGES = {"r": (23.9, 24.7), "i": (23.3, 24.1), "z": (22.6, 23.4)}  # 10σ point source
PSF_FWHM_RANGES = {"r": (0.8, 1.3), "i": (0.75, 1.2), "z": (0.7, 1.15)}  # arcsec

DEEP_MAG_RANGE = (18.0, 25.5)  # i band
COUNT_SLOPE = 0.33  # d log10 N / dm
NEIGHBOUR_DENSITY = 45.0  # deep-field galaxies per arcmin² with i < 25.5
NEIGHBOUR_MARGIN = 8  # px: neighbours are centred up to this far outside the stamp

DETECT_THRESH = 1.5  # per-pixel σ of the detection image
DETECT_MINAREA = 5  # px
MATCH_RADIUS = 1.0  # arcsec
KRON_FACTOR = 2.5
KRON_MIN_RADIUS = 1.75  # px
_KRON_WINDOW = 6.0  # Source Extractor's fixed window for the Kron radius, in units of (a, b)
_RENDER_BLOCK = 64  # galaxies per block of the renderer: 64 × 6 components × 41² px ≈ 2.6 MB


def mag_to_flux(mag: np.ndarray, zero_point: float = ZERO_POINT) -> np.ndarray:
    """F = 10^{-0.4 (m − ZP)}."""
    return 10 ** (-0.4 * (np.asarray(mag, dtype=float) - zero_point))


def flux_to_mag(flux: np.ndarray, zero_point: float = ZERO_POINT) -> np.ndarray:
    """m = ZP − 2.5 log10 F for F > 0, NaN for F ≤ 0 or NaN."""
    flux = np.asarray(flux, dtype=float)
    positive = flux > 0
    return np.where(positive, zero_point - 2.5 * np.log10(np.where(positive, flux, 1.0)), np.nan)


def psf_sigma_pixels(psf_fwhm: np.ndarray) -> np.ndarray:
    """Gaussian PSF σ in pixels from its FWHM in arcsec."""
    return np.asarray(psf_fwhm) / FWHM_PER_SIGMA / PIXEL_SCALE


def point_source_depth(
    psf_fwhm: np.ndarray, sky_sigma: np.ndarray, snr: float = 10.0
) -> np.ndarray:
    """Magnitude of a point source detected at ``snr`` by optimal photometry (noise area 4πσ_psf²)."""
    area = 4 * np.pi * psf_sigma_pixels(psf_fwhm) ** 2
    return ZERO_POINT - 2.5 * np.log10(snr * np.asarray(sky_sigma) * np.sqrt(area))


def sky_sigma_for_depth(psf_fwhm: np.ndarray, depth: np.ndarray, snr: float = 10.0) -> np.ndarray:
    """Per-pixel sky σ that gives ``depth`` at ``snr``: the inverse of :func:`point_source_depth`."""
    area = 4 * np.pi * psf_sigma_pixels(psf_fwhm) ** 2
    return mag_to_flux(depth) / (snr * np.sqrt(area))


class _SmoothField:
    """g(x) = ∑_m A_m cos(2π k_m·x + φ_m) on flat-sky coordinates x (degrees), shape (n, 2)."""

    def __init__(self, rng: np.random.Generator, n_modes: int, wavelengths: tuple[float, float]):
        wavelength = rng.uniform(*wavelengths, n_modes)
        angle = rng.uniform(0, 2 * np.pi, n_modes)
        self.k = np.stack([np.cos(angle), np.sin(angle)], axis=1) / wavelength[:, None]
        self.phase = rng.uniform(0, 2 * np.pi, n_modes)
        self.amplitude = wavelength * rng.uniform(0.5, 1.0, n_modes)  # long modes dominate

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.cos(2 * np.pi * x @ self.k.T + self.phase) @ self.amplitude


class SurveyFootprint:
    """Smoothly varying observing conditions over ``ra_range`` × ``dec_range`` (degrees).

    Conditions are mixes of :class:`_SmoothField` s (wavelengths from ``min_wavelength`` to
    twice the patch size), each rescaled to u ∈ [0, 1] by its extremes on a 128² grid of the
    patch:

    * seeing, 70 % shared by the bands (one atmosphere): FWHM_b = lo_b + (hi_b − lo_b) u_psf,b
      within :data:`PSF_FWHM_RANGES`;
    * sky noise, from an exposure-time field shared by the bands and a per-band sky-brightness
      field: −2.5 log10 σ_sky,b = α_b + β_b u_sky,b, independent of the seeing.

    The depth m10_b = const − 2.5 log10 FWHM_b + α_b + β_b u_sky,b then carries both; α_b and β_b
    are solved for so that it spans exactly :data:`DEPTH_RANGES` over the grid. The same ``seed``
    gives the same sky.
    """

    def __init__(
        self,
        seed: int = 0,
        ra_range: tuple[float, float] = (40.0, 50.0),
        dec_range: tuple[float, float] = (-35.0, -25.0),
        n_modes: int = 6,
        min_wavelength: float = 1.5,
    ):
        self.ra_range, self.dec_range = ra_range, dec_range
        self.centre = (np.mean(ra_range), np.mean(dec_range))
        ra, dec = np.meshgrid(np.linspace(*ra_range, 128), np.linspace(*dec_range, 128))
        self._grid = self._flat(ra.ravel(), dec.ravel())
        rng = np.random.default_rng(seed)
        wavelengths = (min_wavelength, 2 * np.ptp(self._grid, axis=0).max())
        seeing = _SmoothField(rng, n_modes, wavelengths)
        exposure = _SmoothField(rng, n_modes, wavelengths)
        self._psf, self._sky, self._depth_coefficients = {}, {}, {}
        for b in BANDS:
            own_seeing = _SmoothField(rng, n_modes, wavelengths)
            sky = _SmoothField(rng, n_modes, wavelengths)
            self._psf[b] = self._rescaled(lambda x, f=own_seeing: 0.7 * seeing(x) + 0.3 * f(x))
            self._sky[b] = self._rescaled(lambda x, f=sky: 0.6 * exposure(x) + 0.4 * f(x))
            lo, hi = DEPTH_RANGES[b]
            g = -2.5 * np.log10(self._fwhm(b, self._grid))
            u = self._sky[b](self._grid)
            beta = brentq(lambda s, g=g, u=u, span=hi - lo: np.ptp(g + s * u) - span, 0.0, 50.0)
            self._depth_coefficients[b] = (lo - np.min(g + beta * u), beta)

    def _flat(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Flat-sky coordinates ((α − α₀) cos δ₀, δ − δ₀) in degrees, shape (n, 2)."""
        ra0, dec0 = self.centre
        return np.stack([(ra - ra0) * np.cos(np.radians(dec0)), dec - dec0], axis=-1)

    def _rescaled(self, field):
        """``field`` mapped to [0, 1] by its extremes on the grid."""
        values = field(self._grid)
        lo, hi = values.min(), values.max()
        return lambda x: np.clip((field(x) - lo) / (hi - lo), 0.0, 1.0)

    def _fwhm(self, band: str, x: np.ndarray) -> np.ndarray:
        lo, hi = PSF_FWHM_RANGES[band]
        return lo + (hi - lo) * self._psf[band](x)

    def sample_positions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) uniform in solid angle over the patch, each shape (n,)."""
        ra = rng.uniform(*self.ra_range, n)
        sin_dec = rng.uniform(*np.sin(np.radians(self.dec_range)), n)
        return ra, np.degrees(np.arcsin(sin_dec))

    def conditions(
        self, ra: np.ndarray, dec: np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Band → (PSF FWHM [arcsec], sky σ per pixel [flux]), arrays of the shape of ``ra``."""
        ra, dec = np.broadcast_arrays(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float))
        x = self._flat(ra.ravel(), dec.ravel())
        out = {}
        for b in BANDS:
            fwhm = self._fwhm(b, x)
            offset, beta = self._depth_coefficients[b]
            depth = np.clip(
                offset - 2.5 * np.log10(fwhm) + beta * self._sky[b](x), *DEPTH_RANGES[b]
            )
            out[b] = (fwhm.reshape(ra.shape), sky_sigma_for_depth(fwhm, depth).reshape(ra.shape))
        return out

    def condition_arrays(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PSF FWHM and sky σ stacked over :data:`BANDS`, each shape (n, 3)."""
        cond = self.conditions(ra, dec)
        return (
            np.stack([cond[b][0] for b in BANDS], axis=-1),
            np.stack([cond[b][1] for b in BANDS], axis=-1),
        )


@dataclass(frozen=True)
class DeepCatalogue:
    """Noiseless deep-field truth; every array has length n.

    ``mag`` (n, 3) true r, i, z magnitudes; ``half_light_radius`` (n,) along the major axis in
    arcsec; ``sersic_n`` (n,) 1 (exponential) or 4 (de Vaucouleurs); ``axis_ratio`` b/a (n,);
    ``position_angle`` (n,) radians from the image x axis; ``deep_id`` (n,) integer ids.
    """

    deep_id: np.ndarray
    mag: np.ndarray
    half_light_radius: np.ndarray
    sersic_n: np.ndarray
    axis_ratio: np.ndarray
    position_angle: np.ndarray

    def __len__(self) -> int:
        return len(self.deep_id)

    def take(self, index: np.ndarray) -> DeepCatalogue:
        """The rows ``index`` (any numpy index), repeats allowed."""
        return DeepCatalogue(*(getattr(self, f.name)[index] for f in fields(self)))


def sample_deep_catalogue(n: int, rng: np.random.Generator) -> DeepCatalogue:
    r"""Draw n deep-field galaxies with ids 0 … n−1.

    * i: dN/dm ∝ 10^{0.33 m} on 18 < i < 25.5, by inverting the truncated exponential CDF.
    * red fraction 0.15 + 0.45 / (1 + e^{(i − 21.5)/0.8}) — red galaxies dominate the bright end.
    * colours (Gaussian scatter): red r−i = 0.75 + 0.05(i − 21) ± 0.10, i−z = 0.40 + 0.03(i − 21)
      ± 0.08 (redshifted red sequence); blue r−i = 0.30 ± 0.18, i−z = 0.12 ± 0.12.
    * log10 r_e [arcsec] = log10 0.9 − 0.12 (i − 21) − 0.1·red ± 0.22 (log-normal), in
      [0.05″, 6″]; red galaxies are n = 4, blue ones n = 1.
    * axis ratio b/a ~ Beta(5, 1.8) (red) or Beta(2.2, 1.5) (blue), at least 0.1; position
      angle uniform.
    """
    lo, hi = DEEP_MAG_RANGE
    beta = COUNT_SLOPE * np.log(10)
    i_mag = lo + np.log1p(rng.uniform(size=n) * np.expm1(beta * (hi - lo))) / beta
    red = rng.uniform(size=n) < 0.15 + 0.45 / (1 + np.exp((i_mag - 21.5) / 0.8))
    dm = i_mag - 21.0
    r_i = np.where(
        red, 0.75 + 0.05 * dm + 0.10 * rng.standard_normal(n), 0.30 + 0.18 * rng.standard_normal(n)
    )
    i_z = np.where(
        red, 0.40 + 0.03 * dm + 0.08 * rng.standard_normal(n), 0.12 + 0.12 * rng.standard_normal(n)
    )
    log_re = np.log10(0.9) - 0.12 * dm - 0.1 * red + 0.22 * rng.standard_normal(n)
    q = np.where(red, rng.beta(5.0, 1.8, n), rng.beta(2.2, 1.5, n))
    return DeepCatalogue(
        deep_id=np.arange(n),
        mag=np.stack([i_mag + r_i, i_mag, i_mag - i_z], axis=1),
        half_light_radius=np.clip(10**log_re, 0.05, 6.0),
        sersic_n=np.where(red, 4, 1),
        axis_ratio=np.maximum(q, 0.1),
        position_angle=rng.uniform(0, np.pi, n),
    )


def render_stamps(
    galaxies: DeepCatalogue,
    x: np.ndarray,
    y: np.ndarray,
    stamp: np.ndarray,
    psf_fwhm: np.ndarray,
    size: int,
) -> np.ndarray:
    r"""Noiseless, PSF-convolved, pixel-integrated images, shape (B, 3, size, size), float32.

    Galaxy g (of G) lands in stamp ``stamp[g]`` at pixel offset (``x[g]``, ``y[g]``) from the
    stamp's central pixel (x along columns); ``psf_fwhm`` (B, 3) gives each stamp's PSF per
    band, B = len(psf_fwhm). Component k of galaxy g in band c is the Gaussian

    .. math:: \frac{F_{gc}\, a_k}{2π\sqrt{|Σ|}} e^{-\frac12 (p - μ)ᵀ Σ^{-1} (p - μ)},\quad
              Σ = v_k r_e^2 R_θ \mathrm{diag}(1, q^2) R_θᵀ + (σ_{\rm psf}^2 + 1/12)\,I,

    whose exponent is linear in the pixel features (X², XY, Y², X, Y, 1), so the components of
    a block of galaxies are one matrix product followed by one ``exp``.
    """
    if not np.isin(galaxies.sersic_n, list(SERSIC_MIXTURES)).all():
        raise ValueError(f"sersic_n must be one of {list(SERSIC_MIXTURES)}")
    n_stamps = len(psf_fwhm)
    grid = np.arange(size) - (size - 1) / 2
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    gx, gy = gx.ravel(), gy.ravel()
    features = np.stack([gx**2, gx * gy, gy**2, gx, gy, np.ones_like(gx)]).astype(np.float32)

    n4 = (galaxies.sersic_n == 4)[:, None]
    amp = np.where(n4, SERSIC_MIXTURES[4][0], SERSIC_MIXTURES[1][0])  # (G, K)
    var = np.where(n4, SERSIC_MIXTURES[4][1], SERSIC_MIXTURES[1][1])
    r2 = (galaxies.half_light_radius / PIXEL_SCALE)[:, None] ** 2 * var
    c, s = np.cos(galaxies.position_angle), np.sin(galaxies.position_angle)
    q2 = galaxies.axis_ratio**2
    gal_xx = r2 * (c**2 + q2 * s**2)[:, None]
    gal_yy = r2 * (s**2 + q2 * c**2)[:, None]
    cov_xy = r2 * ((1 - q2) * s * c)[:, None]
    blur = psf_sigma_pixels(psf_fwhm)[stamp] ** 2 + 1 / 12  # (G, 3)
    flux = mag_to_flux(galaxies.mag)

    mx, my = x[:, None], y[:, None]
    order = np.argsort(stamp, kind="stable")
    present, first, counts = np.unique(stamp[order], return_index=True, return_counts=True)
    out = np.zeros((n_stamps, len(BANDS), size * size), dtype=np.float32)
    # threaded BLAS on products this small spends more on synchronisation than it gains
    with threadpool_limits(limits=1, user_api="blas"):
        for band in range(len(BANDS)):
            cov_xx = gal_xx + blur[:, band, None]
            cov_yy = gal_yy + blur[:, band, None]
            det = cov_xx * cov_yy - cov_xy**2
            p_xx, p_yy, p_xy = cov_yy / det, cov_xx / det, -cov_xy / det
            const = np.log(flux[:, band, None] * amp / (2 * np.pi * np.sqrt(det)))
            quad = p_xx * mx**2 + 2 * p_xy * mx * my + p_yy * my**2
            weights = np.stack(
                [
                    -p_xx / 2,
                    -p_xy,
                    -p_yy / 2,
                    p_xx * mx + p_xy * my,
                    p_xy * mx + p_yy * my,
                    const - quad / 2,
                ],
                axis=-1,
            ).astype(np.float32)[order]  # (G, K, 6)
            image = np.empty((len(weights), size * size), dtype=np.float32)
            # Exponents of a cache-sized block of galaxies are one small GEMM, exponentiated in
            # place and summed over components before leaving the cache.
            for start in range(0, len(weights), _RENDER_BLOCK):
                block = weights[start : start + _RENDER_BLOCK]
                exponent = block.reshape(-1, 6) @ features
                np.exp(exponent, out=exponent)
                image[start : start + len(block)] = exponent.reshape(*block.shape[:2], -1).sum(1)
            # add every stamp's j-th galaxy at once (np.add.reduceat along axis 0 is far slower)
            for j in range(counts.max()):
                has = counts > j
                out[present[has], band] += image[first[has] + j]
    return out.reshape(n_stamps, len(BANDS), size, size)


def measure(
    images: np.ndarray, sky_sigma: np.ndarray, x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """Detect and measure the object at (``x``, ``y``) of every stamp (see the module docstring).

    Args:
        images: (B, 3, S, S) background-subtracted r, i, z stamps.
        sky_sigma: (B, 3) per-pixel noise σ of each stamp and band.
        x, y: (B,) expected position, pixel offsets from the stamp's central pixel.

    Returns:
        ``detected`` (B,) bool; ``flux`` and ``flux_err`` (B, 3), Kron fluxes in the units of
        ``images`` and their sky-noise errors, NaN where not detected.
    """
    n, n_bands, size, _ = images.shape
    weight = sky_sigma**-2 / np.sqrt(np.sum(sky_sigma**-2, axis=1, keepdims=True))
    detection = np.einsum("bc,bcij->bij", weight, images).astype(np.float32)  # unit noise
    images = np.ascontiguousarray(images, dtype=np.float32)  # sep reads C-ordered buffers
    centre = (size - 1) / 2
    flux = np.full((n, n_bands), np.nan)
    flux_err = np.full((n, n_bands), np.nan)
    # sep works on one image at a time; each stamp is one image, so no stamp sees another. Its
    # pixel stack (300 000 by default) is allocated on every call and dominates the cost of a
    # small image; a stamp whose every pixel is above threshold needs just over size².
    pixstack = sep.get_extract_pixstack()
    sep.set_extract_pixstack(2 * size * size)
    try:
        for k in range(n):
            found = _measure_stamp(detection[k], images[k], centre + x[k], centre + y[k])
            if found is not None:
                flux[k] = found[0]
                flux_err[k] = found[1] * sky_sigma[k]  # errors came for unit noise
    finally:
        sep.set_extract_pixstack(pixstack)
    return {"detected": ~np.isnan(flux[:, 0]), "flux": flux, "flux_err": flux_err}


def _measure_stamp(
    detection: np.ndarray, bands: np.ndarray, x: float, y: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Kron fluxes (C,) in ``bands`` (C, S, S) and their errors for unit noise, of the detection
    nearest to pixel (x, y) of ``detection`` (S, S); None if none lies within the match radius."""
    objects, segmap = sep.extract(
        detection, DETECT_THRESH, err=1.0, minarea=DETECT_MINAREA, segmentation_map=True
    )
    dist = np.hypot(objects["x"] - x, objects["y"] - y)
    if not np.any(dist < MATCH_RADIUS / PIXEL_SCALE):
        return None
    j = int(np.argmin(dist))
    obj = objects[j : j + 1]
    # θ comes in float32, which can round just past the ±π/2 that sep's apertures accept
    theta = np.clip(obj["theta"], -np.pi / 2, np.pi / 2)
    ellipse = (obj["x"], obj["y"], obj["a"], obj["b"], theta)
    masking = {"seg_id": np.array([j + 1]), "segmap": segmap}  # mask other objects' pixels
    kron, _ = sep.kron_radius(detection, *ellipse, _KRON_WINDOW, **masking)
    flux, err = np.empty((2, len(bands)))
    for c, data in enumerate(bands):
        if kron[0] * np.sqrt(obj["a"][0] * obj["b"][0]) >= KRON_MIN_RADIUS:
            f, e, _ = sep.sum_ellipse(
                data, *ellipse, KRON_FACTOR * kron, err=1.0, subpix=1, **masking
            )
        else:  # a small (or NaN) Kron ellipse
            f, e, _ = sep.sum_circle(
                data, obj["x"], obj["y"], KRON_MIN_RADIUS, err=1.0, subpix=1, **masking
            )
        flux[c], err[c] = f[0], e[0]
    return flux, err


def inject(
    galaxies: DeepCatalogue,
    ra: np.ndarray,
    dec: np.ndarray,
    footprint: SurveyFootprint,
    rng: np.random.Generator,
    *,
    stamp_size: int = 41,
    neighbour_density: float = NEIGHBOUR_DENSITY,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Inject ``galaxies`` (n rows) at (``ra``, ``dec``) (n,) and measure them.

    Each injection gets its own stamp: the galaxy near the centre (uniform sub-pixel offset),
    Poisson(``neighbour_density`` × area) neighbours from :func:`sample_deep_catalogue` centred
    anywhere within :data:`NEIGHBOUR_MARGIN` px of the stamp, the footprint's PSF and sky noise
    at (ra, dec), then :func:`measure`. Batches of ``batch_size`` stamps are rendered and
    measured together.

    Returns:
        ``detected`` (n,), ``flux``, ``flux_err``, ``psf_fwhm``, ``sky_sigma`` (n, 3).
    """
    n = len(galaxies)
    psf_fwhm, sky_sigma = footprint.condition_arrays(ra, dec)
    half = stamp_size / 2 + NEIGHBOUR_MARGIN
    area = (2 * half * PIXEL_SCALE / 60) ** 2  # arcmin²
    results = []
    bar = tqdm(
        total=n, desc="injections", unit="inj", disable=not progress, leave=False, mininterval=2
    )
    for start in range(0, n, batch_size):
        batch = slice(start, min(start + batch_size, n))
        b = batch.stop - batch.start
        n_neighbours = rng.poisson(neighbour_density * area, b)
        neighbours = sample_deep_catalogue(int(n_neighbours.sum()), rng)
        offset = rng.uniform(-0.5, 0.5, (b, 2))
        scene = DeepCatalogue(
            *(
                np.concatenate([getattr(galaxies, f.name)[batch], getattr(neighbours, f.name)])
                for f in fields(DeepCatalogue)
            )
        )
        xy = np.concatenate([offset, rng.uniform(-half, half, (len(neighbours), 2))])
        stamp = np.concatenate([np.arange(b), np.repeat(np.arange(b), n_neighbours)])
        images = render_stamps(scene, xy[:, 0], xy[:, 1], stamp, psf_fwhm[batch], stamp_size)
        noise = rng.standard_normal(images.shape, dtype=np.float32)
        images += noise * sky_sigma[batch, :, None, None].astype(np.float32)
        results.append(measure(images, sky_sigma[batch], offset[:, 0], offset[:, 1]))
        bar.update(b)
    bar.close()
    out = {k: np.concatenate([r[k] for r in results]) for k in results[0]}
    return {**out, "psf_fwhm": psf_fwhm, "sky_sigma": sky_sigma}


def _frame(
    galaxies: DeepCatalogue, ra: np.ndarray, dec: np.ndarray, result: dict[str, np.ndarray]
) -> pd.DataFrame:
    """One row per injection in the catalogue convention shared with :mod:`astrogen.io.balrog`."""
    columns = {
        "deep_id": galaxies.deep_id,
        "injection_id": np.arange(len(galaxies)),
        "ra": ra,
        "dec": dec,
    }
    for c, b in enumerate(BANDS):
        columns[f"true_mag_{b}"] = galaxies.mag[:, c]
        columns[f"obs_mag_{b}"] = flux_to_mag(result["flux"][:, c])
        columns[f"obs_flux_{b}"] = result["flux"][:, c]
        columns[f"obs_flux_err_{b}"] = result["flux_err"][:, c]
    for c, b in enumerate(BANDS):
        columns[f"psf_fwhm_{b}"] = result["psf_fwhm"][:, c]
        columns[f"sky_sigma_{b}"] = result["sky_sigma"][:, c]
    columns["detected"] = result["detected"]
    return pd.DataFrame(columns)


def run_injections(
    n: int,
    seed: int,
    footprint: SurveyFootprint | None = None,
    repeats: int = 4,
    progress: bool = True,
    **inject_kwargs,
) -> pd.DataFrame:
    """n injections of ⌈n / repeats⌉ deep galaxies, each at ``repeats`` random positions.

    Rows are in random order (split train/test by ``deep_id``: repeats share their truth).
    Columns: ``deep_id``, ``injection_id``, ``ra``, ``dec`` [deg]; per band b ∈ r, i, z:
    ``true_mag_b``, ``obs_mag_b`` (NaN if undetected or flux ≤ 0), ``obs_flux_b`` and
    ``obs_flux_err_b`` (ZP 30; NaN if undetected), ``psf_fwhm_b`` [arcsec], ``sky_sigma_b``
    [flux per pixel]; ``detected``. ``attrs["injections_per_second"]`` records the speed.
    The same ``seed`` (and footprint, arguments) gives the same frame.

    Args:
        footprint: the sky; defaults to ``SurveyFootprint()``.
        inject_kwargs: passed to :func:`inject` (``stamp_size``, ``neighbour_density``, …).
    """
    footprint = SurveyFootprint() if footprint is None else footprint
    rng = np.random.default_rng(seed)
    deep = sample_deep_catalogue(-(-n // repeats), rng)
    galaxies = deep.take(rng.permutation(np.repeat(np.arange(len(deep)), repeats)[:n]))
    ra, dec = footprint.sample_positions(n, rng)
    start = time.perf_counter()
    result = inject(galaxies, ra, dec, footprint, rng, progress=progress, **inject_kwargs)
    frame = _frame(galaxies, ra, dec, result)
    frame.attrs["injections_per_second"] = n / (time.perf_counter() - start)
    return frame


def inject_fixed(
    galaxy: DeepCatalogue,
    ra: float,
    dec: float,
    n: int,
    seed: int,
    footprint: SurveyFootprint | None = None,
    **inject_kwargs,
) -> pd.DataFrame:
    """n injections of one galaxy (a one-row catalogue) at one position: p(obs | fixed input).

    Only the noise, the neighbours and the sub-pixel offset change between rows, so the spread
    of the observed columns is the transfer function at these true magnitudes and conditions.
    Same columns as :func:`run_injections`.
    """
    if len(galaxy) != 1:
        raise ValueError(f"inject_fixed takes a one-row catalogue, got {len(galaxy)} rows")
    footprint = SurveyFootprint() if footprint is None else footprint
    rng = np.random.default_rng(seed)
    galaxies = galaxy.take(np.zeros(n, dtype=int))
    ra_n, dec_n = np.full(n, float(ra)), np.full(n, float(dec))
    result = inject(galaxies, ra_n, dec_n, footprint, rng, **inject_kwargs)
    return _frame(galaxies, ra_n, dec_n, result)
