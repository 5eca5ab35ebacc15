r"""Non-parametric galaxy morphology: Petrosian radius, CAS, Gini, M20, size and magnitude.

For one background-subtracted image I (H, W) with white sky noise σ (estimated from the border
pixels when not given), following Conselice (2003) and Lotz, Primack & Madau (2004):

* **centre** — the flux-weighted centroid of the pixels above 1.5 σ (3×3-smoothed) in the
  connected region nearest the stamp centre; it minimises the second moment :math:`\sum f r^2`;
* **curve of growth** L(r) — pixels split into 3×3 sub-pixels, each with a ninth of the flux, so
  apertures of a few pixels are not quantised to whole pixels;
* **Petrosian radius** r_p — where the surface brightness in an annulus at r falls to
  η = 0.2 of the mean within r; the total flux F = L(1.5 r_p) (capped at the stamp);
* **concentration** :math:`C = 5\log_{10}(r_{80}/r_{20})`, :math:`L(r_x) = x F`;
* **asymmetry** :math:`A = \sum|I - I_{180}| / \sum|I| - A_{\rm bg}` over the pixels within
  1.5 r_p, rotating about the half-pixel nearest the centre (an exact pixel permutation, so the
  white-noise term is :math:`A_{\rm bg} = N_{\rm pix}\,2σ/\sqrt{π} / \sum|I|` in expectation);
* **Gini** :math:`G = \sum_i (2i - n - 1)|X_i| / (n(n-1)\overline{|X|})` over the n pixels
  (sorted ascending) within 1.5 r_p and brighter than the mean surface brightness at r_p;
* **M20** :math:`\log_{10}\big(\sum_{\rm brightest\ 20\%} f_i r_i^2 / \sum f_i r_i^2\big)` on the
  same pixels, r_i from the centre;
* **half-light radius** r_50 (arcsec) and the magnitude −2.5 log10 F + ZP.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

ETA = 0.2
SUBPIXELS = 3
SEGMENT_SIGMA = 1.5
BORDER = 4  # pixels of the stamp edge used for the sky σ
COLUMNS = ("concentration", "asymmetry", "gini", "m20", "r_petro", "r50", "mag", "sky_sigma")


def border_sigma(image: np.ndarray, width: int = BORDER) -> float:
    """Robust (MAD) standard deviation of the outer ``width`` pixels of a (H, W) image."""
    mask = np.ones(image.shape, bool)
    mask[width:-width, width:-width] = False
    edge = image[mask]
    return float(1.4826 * np.median(np.abs(edge - np.median(edge))))


def _centre(image: np.ndarray, sigma: float) -> tuple[float, float]:
    smooth = ndimage.uniform_filter(image, 3)
    labels, n = ndimage.label(smooth > SEGMENT_SIGMA * sigma / 3)  # 3×3 mean: σ/3
    h, w = image.shape
    if n == 0:
        return (h - 1) / 2, (w - 1) / 2
    yy, xx = np.indices(image.shape)
    centres = ndimage.center_of_mass(np.ones_like(image), labels, range(1, n + 1))
    dist = [np.hypot(cy - (h - 1) / 2, cx - (w - 1) / 2) for cy, cx in centres]
    region = labels == 1 + int(np.argmin(dist))
    flux = np.clip(image, 0, None) * region
    total = flux.sum()
    if total <= 0:
        return (h - 1) / 2, (w - 1) / 2
    return float((flux * yy).sum() / total), float((flux * xx).sum() / total)


def _growth(image: np.ndarray, cy: float, cx: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted sub-pixel distances from (cy, cx) and the cumulative flux within each."""
    k = SUBPIXELS
    offsets = (np.arange(k) + 0.5) / k - 0.5
    yy, xx = np.indices(image.shape)
    dy = yy[:, :, None, None] + offsets[:, None] - cy  # (H, W, k, 1)
    dx = xx[:, :, None, None] + offsets[None, :] - cx  # (H, W, 1, k)
    r = np.hypot(dy, dx).ravel()  # (H·W·k²,), pixel-major like the flux below
    flux = np.repeat(image.ravel() / k**2, k * k)
    order = np.argsort(r)
    return r[order], np.cumsum(flux[order])


def _enclosed(r_sorted: np.ndarray, cumulative: np.ndarray, radius: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(r_sorted, radius, side="right")
    return np.where(idx > 0, cumulative[np.maximum(idx - 1, 0)], 0.0)


def _radius_at(r_sorted: np.ndarray, cumulative: np.ndarray, level: float) -> float:
    """Smallest radius enclosing ``level`` of flux, linearly interpolated."""
    idx = int(np.searchsorted(cumulative, level))
    idx = min(max(idx, 1), len(r_sorted) - 1)
    c0, c1 = cumulative[idx - 1], cumulative[idx]
    frac = 0.0 if c1 == c0 else (level - c0) / (c1 - c0)
    return float(r_sorted[idx - 1] + np.clip(frac, 0, 1) * (r_sorted[idx] - r_sorted[idx - 1]))


def petrosian_radius(r_sorted: np.ndarray, cumulative: np.ndarray, r_max: float) -> float:
    """First radius where annular / mean-interior surface brightness drops below :data:`ETA`."""
    radii = np.arange(1.0, r_max, 0.25)
    inner = _enclosed(r_sorted, cumulative, radii)
    ring = _enclosed(r_sorted, cumulative, radii * 1.25) - _enclosed(
        r_sorted, cumulative, radii * 0.8
    )
    eta = (ring / (np.pi * radii**2 * (1.25**2 - 0.8**2))) / (inner / (np.pi * radii**2))
    below = np.nonzero((eta < ETA) & (inner > 0))[0]
    if len(below) == 0:
        return float(r_max)
    i = below[0]
    if i == 0:
        return float(radii[0])
    # interpolate η between the bracketing radii
    t = (eta[i - 1] - ETA) / (eta[i - 1] - eta[i])
    return float(radii[i - 1] + t * (radii[i] - radii[i - 1]))


def asymmetry(image: np.ndarray, cy: float, cx: float, radius: float, sigma: float) -> float:
    """A of the module docstring within ``radius`` of the centre, noise term subtracted."""
    h, w = image.shape
    sy, sx = round(2 * cy), round(2 * cx)  # rotation centre (sy/2, sx/2): i → sy − i
    yy, xx = np.indices(image.shape)
    ry, rx = sy - yy, sx - xx
    inside = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
    inside &= np.hypot(yy - sy / 2, xx - sx / 2) <= radius
    rotated = image[np.clip(ry, 0, h - 1), np.clip(rx, 0, w - 1)]
    norm = np.abs(image[inside]).sum()
    if norm <= 0:
        return float("nan")
    residual = np.abs(image - rotated)[inside].sum()
    return float((residual - inside.sum() * 2 * sigma / np.sqrt(np.pi)) / norm)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of |values| (1-D): 0 for equal values, → 1 when one holds all."""
    x = np.sort(np.abs(np.asarray(values, float).ravel()))
    n = len(x)
    if n < 2 or x.sum() == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (x.mean() * n * (n - 1)))


def m20(flux: np.ndarray, r2: np.ndarray) -> float:
    """M20 from pixel fluxes and squared distances to the centre (1-D arrays)."""
    order = np.argsort(flux)[::-1]
    f, d = flux[order], r2[order]
    moment = f * d
    total = moment.sum()
    n_bright = int(np.searchsorted(np.cumsum(f), 0.2 * f.sum())) + 1
    if total <= 0:
        return float("nan")
    return float(np.log10(moment[:n_bright].sum() / total))


def measure(
    image: np.ndarray, pixel_scale: float, zero_point: float, sigma: float | None = None
) -> dict[str, float]:
    """All of :data:`COLUMNS` for one sky-subtracted (H, W) image (radii in arcsec)."""
    image = np.asarray(image, float)
    sigma = border_sigma(image) if sigma is None else float(sigma)
    cy, cx = _centre(image, sigma)
    r_sorted, cumulative = _growth(image, cy, cx)
    r_max = min(cy, cx, image.shape[0] - 1 - cy, image.shape[1] - 1 - cx) + 0.5
    r_p = petrosian_radius(r_sorted, cumulative, r_max)
    aperture = min(1.5 * r_p, r_max)
    total = float(_enclosed(r_sorted, cumulative, np.array([aperture]))[0])
    r20, r50, r80 = (_radius_at(r_sorted, cumulative, f * total) for f in (0.2, 0.5, 0.8))
    yy, xx = np.indices(image.shape)
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    # Lotz et al.: pixels brighter than the mean surface brightness at r_p
    ring = _enclosed(r_sorted, cumulative, np.array([1.25 * r_p, 0.8 * r_p]))
    mu_p = (ring[0] - ring[1]) / (np.pi * r_p**2 * (1.25**2 - 0.8**2))
    smooth = ndimage.uniform_filter(image, 3)
    segment = (r2 <= aperture**2) & (smooth >= mu_p)
    if segment.sum() < 2:
        segment = r2 <= aperture**2
    return {
        "concentration": 5 * np.log10(r80 / r20) if r20 > 0 else float("nan"),
        "asymmetry": asymmetry(image, cy, cx, aperture, sigma),
        "gini": gini(image[segment]),
        "m20": m20(image[segment], r2[segment]),
        "r_petro": r_p * pixel_scale,
        "r50": r50 * pixel_scale,
        "mag": zero_point - 2.5 * np.log10(total) if total > 0 else float("nan"),
        "sky_sigma": sigma,
    }


def measure_all(
    images: np.ndarray, pixel_scale: float, zero_point: float, band: int
) -> pd.DataFrame:
    """:func:`measure` on ``images[:, band]`` of (N, C, H, W), one row per image."""
    return pd.DataFrame(
        [measure(img, pixel_scale, zero_point) for img in images[:, band]], columns=COLUMNS
    )
