r"""Measured properties of 8-bit RGB galaxy cutouts, vectorised over images, and their complexity.

The real format of study 4 is a folder of PNG cutouts, so everything here is measured on what
such a cutout holds: 8-bit R, G, B (i, r, g bands after an asinh stretch), shape (N, 3, H, W)
``uint8``. Each image is measured on its own (rows never mix), so a property is the same
whether an image is measured alone or in a batch. With a known display stretch the same
properties can be measured on linear flux instead (``stretch=``, :mod:`astrogen.stretch`).

With pixels p_c ∈ [0, 1] per channel c (or linear fluxes, when the stretch is undone):

* **background** — per channel the level b_c = mean of the border pixels (``BORDER`` wide)
  below their median + 5 (q₈₄ − q₅₀): a mean, not a median, because the stretch clips negative
  sky to 0, so clipped noise averages ≈ 0.4 σ and only subtracting its mean leaves sums of sky
  pixels unbiased. ``sky_sigma`` = log₁₀ of q₈₄ − q₅₀ of the border of the intensity
  I = mean_c(p_c − b_c) (σ for Gaussian noise, and still σ when negatives are clipped, where
  q₅₀ = 0); ``sky_level`` = mean_c b_c;
* **centre** — flux-weighted centroid of the 3×3-smoothed, positive I within 8 px of the stamp
  centre, refined once within 6 px of the first estimate;
* **curve of growth** L(R) = Σ I over pixels within R of the centre, each pixel weighted by
  its (first-order) overlap with the circle, clip(R − r + ½, 0, 1);
* **Petrosian radius** r_p — where the mean I in the annulus 0.8–1.25 R falls to η = 0.2 of the
  mean within R; aperture 1.5 r_p (at most the stamp's inscribed circle); **total** F = L(aperture),
  ``mag`` = −2.5 log₁₀ F (an instrumental magnitude of the stretched light);
* r₂₀, r₅₀, r₈₀: L(r_x) = x F; **concentration** C = 5 log₁₀(r₈₀ / r₂₀); radii in arcsec;
* **colours** ``colour_gr`` = −2.5 log₁₀(F_B / F_G), ``colour_ri`` = −2.5 log₁₀(F_G / F_R) in the
  aperture (g → B, r → G, i → R); **colour gradients** ``grad_gr``, ``grad_ri`` = colour within
  r₅₀ minus colour between r₅₀ and the aperture;
* **asymmetry** A = Σ|I − I₁₈₀| / Σ|I| − N_pix 2σ_I / (√π Σ|I|) in the aperture, rotating about
  the half-pixel nearest the centre (an exact pixel permutation);
* **smoothness** S = Σ (I − B₅ I)₊ / Σ I in the aperture outside 2 px (B₅: 5×5 box mean), the
  clumpy light;
* **Gini** and **M20** (Lotz et al. 2004) over aperture pixels whose 3×3-smoothed I reaches the
  mean annular I at r_p;
* **ellipticity** 1 − √(λ_min / λ_max) of the second moments of I₊ in the aperture.

Complexity (:func:`compressed_bits`, Serrà et al. 2020) is the zlib-compressed length of the
image's bytes after PNG's "Sub" filter (each byte minus its left neighbour, mod 256), in bits per
sub-pixel: more structure (or noise) → longer code.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from scipy import ndimage

from astrogen.stretch import LuptonStretch

BORDER = 4
ETA = 0.2
PIXEL_SCALE = 0.396  # arcsec per pixel (SDSS)
COLUMNS = (
    "mag", "colour_gr", "colour_ri", "grad_gr", "grad_ri", "r20", "r50", "r_petro",
    "concentration", "asymmetry", "smoothness", "gini", "m20", "ellipticity", "sky_sigma",
    "sky_level",
)  # fmt: skip
LOG_COLUMNS = ("r20", "r50", "r_petro")  # modelled as log10 by the feature density
# What each group of properties describes (the explanation step's vocabulary).
GROUPS = {
    "size": ("r20", "r50", "r_petro"),
    "concentration": ("concentration", "gini", "m20"),
    "colour": ("colour_gr", "colour_ri", "grad_gr", "grad_ri"),
    "structure": ("asymmetry", "smoothness"),
    "background": ("sky_sigma", "sky_level"),
    "brightness": ("mag",),
    "shape": ("ellipticity",),
}
_BATCH = 64


def _border(x: np.ndarray, width: int) -> np.ndarray:
    """Border pixels of (N, ..., H, W) as (N, ..., K)."""
    h, w = x.shape[-2:]
    mask = np.ones((h, w), bool)
    mask[width:-width, width:-width] = False
    return x[..., mask]


def _centroid(smooth: np.ndarray, cy: np.ndarray, cx: np.ndarray, radius: float, yy, xx):
    weight = np.clip(smooth, 0, None) * (
        (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2 <= radius**2
    )
    total = weight.sum((1, 2))
    ok = total > 0
    new_y = np.where(ok, (weight * yy).sum((1, 2)) / np.where(ok, total, 1), cy)
    new_x = np.where(ok, (weight * xx).sum((1, 2)) / np.where(ok, total, 1), cx)
    return new_y, new_x


class _Growth:
    """Soft-aperture curve of growth per image on a fine radius grid, with vectorised look-ups.

    A pixel at distance r from the centre counts into the aperture of radius R with weight
    clip(R − r + ½, 0, 1) (its overlap with the circle, to first order in the pixel's size), so
    L(R) is continuous in R and in the centre: the hard-edged flux within r < ρ, binned on a
    grid of :data:`STEP` px, averaged over ρ ∈ [R − ½, R + ½].
    """

    STEP = 0.05
    R_MAX = 48.0

    def __init__(self, image: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> None:
        n, h, w = image.shape
        yy, xx = np.indices((h, w), dtype=np.float64)
        r = np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]).reshape(n, -1)
        k = int(self.R_MAX / self.STEP)
        bins = np.minimum((r / self.STEP).astype(np.int64), k - 1)
        flat = (bins + np.arange(n)[:, None] * k).ravel()
        ring = np.bincount(flat, image.reshape(n, -1).ravel(), n * k).reshape(n, k)
        hard = np.concatenate([np.zeros((n, 1)), np.cumsum(ring, 1)], 1)  # flux within r < jδ
        half = round(0.5 / self.STEP)
        padded = np.concatenate([np.zeros((n, half)), hard, np.repeat(hard[:, -1:], half, 1)], 1)
        window = np.cumsum(np.concatenate([np.zeros((n, 1)), padded], 1), 1)
        width = 2 * half + 1
        self.curve = (window[:, width:] - window[:, :-width]) / width  # L(jδ), j = 0 … k
        self.rising = np.maximum.accumulate(self.curve, 1)
        self.n = n

    def enclosed(self, radius: np.ndarray) -> np.ndarray:
        """L(R) for R (N, K), linearly interpolated on the grid."""
        x = np.clip(np.asarray(radius, float) / self.STEP, 0, self.curve.shape[1] - 1.000001)
        i = x.astype(np.int64)
        t = x - i
        return (1 - t) * np.take_along_axis(self.curve, i, 1) + t * np.take_along_axis(
            self.curve, i + 1, 1
        )

    def radius_at(self, level: np.ndarray) -> np.ndarray:
        """Smallest radius whose (running-maximum) enclosed flux reaches ``level`` (N,)."""
        rows = np.arange(self.n)
        idx = np.clip((self.rising < level[:, None]).sum(1), 1, self.rising.shape[1] - 1)
        c0, c1 = self.rising[rows, idx - 1], self.rising[rows, idx]
        frac = np.clip(np.where(c1 > c0, (level - c0) / np.where(c1 > c0, c1 - c0, 1), 0), 0, 1)
        return (idx - 1 + frac) * self.STEP


def _petrosian(growth: _Growth, r_max: np.ndarray) -> np.ndarray:
    radii = np.arange(1.0, 32.0, 0.25)[None, :].repeat(growth.n, 0)
    inner = growth.enclosed(radii)
    ring = growth.enclosed(1.25 * radii) - growth.enclosed(0.8 * radii)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = (ring / (1.25**2 - 0.8**2)) / inner
    below = (eta < ETA) & (inner > 0) & (radii < r_max[:, None])
    first = np.where(below.any(1), below.argmax(1), -1)
    out = r_max.copy()
    for i in np.nonzero(first >= 0)[0]:
        j = first[i]
        if j == 0:
            out[i] = radii[i, 0]
            continue
        t = (eta[i, j - 1] - ETA) / (eta[i, j - 1] - eta[i, j])
        out[i] = radii[i, j - 1] + t * (radii[i, j] - radii[i, j - 1])
    return out


def _gini(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.sort(np.where(mask, np.abs(values), 0.0), 1)
    n = mask.sum(1)
    p = x.shape[1]
    rank = np.arange(1, p + 1)[None, :] - (p - n)[:, None]  # zeros (outside) rank ≤ 0
    total = x.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = ((2 * rank - n[:, None] - 1) * x).sum(1) / (total * (n - 1))
    return np.where((n >= 2) & (total > 0), g, np.nan)


def _m20(flux: np.ndarray, r2: np.ndarray, mask: np.ndarray) -> np.ndarray:
    f = np.where(mask, np.clip(flux, 0, None), 0.0)
    order = np.argsort(-f, 1, kind="stable")
    f = np.take_along_axis(f, order, 1)
    moment = f * np.take_along_axis(r2, order, 1)
    cum = np.cumsum(f, 1)
    n_bright = (cum < 0.2 * cum[:, -1:]).sum(1) + 1
    bright = np.arange(f.shape[1])[None, :] < n_bright[:, None]
    total = moment.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10((moment * bright).sum(1) / total)
    return np.where(total > 0, out, np.nan)


def _colour(blue: np.ndarray, red: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """−2.5 log₁₀(blue / red), each flux floored at ``floor`` so empty rings stay finite."""
    return -2.5 * np.log10(np.maximum(blue, floor) / np.maximum(red, floor))


def _measure_batch(
    pixels: np.ndarray, pixel_scale: float, stretch: LuptonStretch | None
) -> dict[str, np.ndarray]:
    if stretch is None:
        p, quantum = np.asarray(pixels, np.float64) / 255.0, 1 / 255
    else:  # linear flux; the smallest non-zero value a channel can hold
        p = stretch.to_flux(pixels)
        quantum = stretch.soft * np.sinh(stretch.q / 255) / stretch.q / max(stretch.scales)
    n, _, h, w = p.shape
    border = _border(p, BORDER)  # (N, 3, K)
    median = np.median(border, 2, keepdims=True)
    width = np.quantile(border, 0.8413, 2, keepdims=True) - median
    sky = border <= median + 5 * np.maximum(width, quantum)  # drop light reaching the border
    level = (border * sky).sum(2) / np.maximum(sky.sum(2), 1)  # (N, 3) clipped mean
    channels = p - level[:, :, None, None]
    image = channels.mean(1)  # (N, H, W)
    b = _border(image, BORDER)
    sigma = np.maximum(np.quantile(b, 0.8413, 1) - np.median(b, 1), 1e-4)
    yy, xx = np.indices((h, w), dtype=np.float64)
    smooth = ndimage.uniform_filter(image, (1, 3, 3), mode="nearest")
    cy, cx = np.full(n, (h - 1) / 2), np.full(n, (w - 1) / 2)
    cy, cx = _centroid(smooth, cy, cx, 8.0, yy, xx)
    cy, cx = _centroid(smooth, cy, cx, 6.0, yy, xx)
    growth = _Growth(image, cy, cx)
    r_max = np.minimum.reduce([cy, cx, h - 1 - cy, w - 1 - cx]) + 0.5
    r_p = _petrosian(growth, r_max)
    aperture = np.minimum(1.5 * r_p, r_max)
    total = growth.enclosed(aperture[:, None])[:, 0]
    positive = total > 0
    levels = np.where(positive, total, 1.0)[:, None] * np.array([0.2, 0.5, 0.8])[None, :]
    r20, r50, r80 = (growth.radius_at(levels[:, k]) for k in range(3))
    r2 = (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2  # (N, H, W)
    inside = r2 <= aperture[:, None, None] ** 2
    core = r2 <= r50[:, None, None] ** 2

    # colours: channel sums in the aperture, within r50 and outside it (B = g, G = r, R = i)
    def sums(mask):
        return (channels * mask[:, None]).sum((2, 3))  # (N, 3) R, G, B

    floor = 1e-3 * np.abs(np.where(positive, total, 1.0))[:, None]
    whole, inner, outer = sums(inside), sums(core & inside), sums(inside & ~core)
    colour = {}
    for name, (blue, red) in {"gr": (2, 1), "ri": (1, 0)}.items():
        colour[name] = _colour(whole[:, blue], whole[:, red], floor[:, 0])
        colour[f"grad_{name}"] = _colour(inner[:, blue], inner[:, red], floor[:, 0]) - _colour(
            outer[:, blue], outer[:, red], floor[:, 0]
        )

    # asymmetry about the half-pixel nearest the centre
    sy, sx = np.round(2 * cy).astype(int), np.round(2 * cx).astype(int)
    ry = sy[:, None, None] - yy.astype(int)[None]
    rx = sx[:, None, None] - xx.astype(int)[None]
    valid = (ry >= 0) & (ry < h) & (rx >= 0) & (rx < w)
    rows = np.arange(n)[:, None, None]
    rotated = image[rows, np.clip(ry, 0, h - 1), np.clip(rx, 0, w - 1)]
    a_mask = valid & (
        (yy[None] - sy[:, None, None] / 2) ** 2 + (xx[None] - sx[:, None, None] / 2) ** 2
        <= aperture[:, None, None] ** 2
    )
    norm = (np.abs(image) * a_mask).sum((1, 2))
    residual = (np.abs(image - rotated) * a_mask).sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        asym = (residual - a_mask.sum((1, 2)) * 2 * sigma / np.sqrt(np.pi)) / norm
        box = ndimage.uniform_filter(image, (1, 5, 5), mode="nearest")
        s_mask = inside & (r2 > 4.0)
        smooth_s = (np.clip(image - box, 0, None) * s_mask).sum((1, 2)) / total

    # Gini and M20 on pixels brighter than the mean annular intensity at r_p
    ring = growth.enclosed(np.stack([1.25 * r_p, 0.8 * r_p], 1))
    mu_p = (ring[:, 0] - ring[:, 1]) / (np.pi * r_p**2 * (1.25**2 - 0.8**2))
    segment = inside & (smooth >= mu_p[:, None, None])
    few = segment.sum((1, 2)) < 2
    segment[few] = inside[few]
    flat_img, flat_seg = image.reshape(n, -1), segment.reshape(n, -1)

    # ellipticity from second moments of the positive light in the aperture
    wgt = np.clip(image, 0, None) * inside
    wsum = np.maximum(wgt.sum((1, 2)), 1e-12)
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    iyy, ixx = (wgt * dy**2).sum((1, 2)) / wsum, (wgt * dx**2).sum((1, 2)) / wsum
    ixy = (wgt * dx * dy).sum((1, 2)) / wsum
    half_trace, det = (ixx + iyy) / 2, ixx * iyy - ixy**2
    root = np.sqrt(np.maximum(half_trace**2 - det, 0))
    lmax, lmin = half_trace + root, np.maximum(half_trace - root, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ellipticity = 1 - np.sqrt(lmin / lmax)

    bad = ~positive
    out = {
        "mag": np.where(bad, np.nan, -2.5 * np.log10(np.where(positive, total, 1.0))),
        "colour_gr": colour["gr"], "colour_ri": colour["ri"],
        "grad_gr": colour["grad_gr"], "grad_ri": colour["grad_ri"],
        "r20": r20 * pixel_scale, "r50": r50 * pixel_scale, "r_petro": r_p * pixel_scale,
        "concentration": 5 * np.log10(np.maximum(r80, 1e-3) / np.maximum(r20, 1e-3)),
        "asymmetry": asym, "smoothness": smooth_s,
        "gini": _gini(flat_img, flat_seg), "m20": _m20(flat_img, r2.reshape(n, -1), flat_seg),
        "ellipticity": ellipticity, "sky_sigma": np.log10(sigma), "sky_level": level.mean(1),
    }  # fmt: skip
    for k in out:
        if k not in ("sky_sigma", "sky_level"):
            out[k] = np.where(bad, np.nan, out[k])
    return out


def measure_properties(
    pixels: np.ndarray, pixel_scale: float = PIXEL_SCALE, stretch: LuptonStretch | None = None
) -> pd.DataFrame:
    """All :data:`COLUMNS` of 8-bit RGB cutouts (N, 3, H, W) ``uint8``; radii in arcsec.

    ``stretch`` None measures the stretched light as the cutout holds it; a
    :class:`astrogen.stretch.LuptonStretch` first undoes that stretch, so every property is
    measured on linear flux (``mag`` then is −2.5 log₁₀ of the band-mean flux in the bands'
    units, colours are true colours). An image whose aperture holds no positive light gets NaN
    for every light-based property.

    Raises:
        ValueError: for anything but a (N, 3, H, W) uint8 array.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected (N, 3, H, W) uint8 pixels, got {pixels.shape} {pixels.dtype}")
    parts = [
        pd.DataFrame(_measure_batch(pixels[i : i + _BATCH], pixel_scale, stretch), columns=COLUMNS)
        for i in range(0, len(pixels), _BATCH)
    ]
    if not parts:
        return pd.DataFrame(columns=COLUMNS, dtype=float)
    return pd.concat(parts, ignore_index=True)


def compressed_bits(pixels: np.ndarray, level: int = 6) -> np.ndarray:
    """Complexity L(x) of 8-bit images (N, C, H, W): zlib length of the Sub-filtered bytes in
    bits per sub-pixel, (N,) float64 (see the module docstring)."""
    pixels = np.asarray(pixels, np.uint8)
    filtered = pixels.copy()
    filtered[..., 1:] = pixels[..., 1:] - pixels[..., :-1]  # uint8 arithmetic wraps mod 256
    size = pixels[0].size if len(pixels) else 1
    return np.array([8 * len(zlib.compress(x.tobytes(), level)) / size for x in filtered])
