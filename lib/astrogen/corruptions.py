"""Generic image corruptions: a development family for choosing anomaly scores.

None of these is one of study 4's seven simulation suites; each is a generic fault of an image
pipeline, applied at one fixed, a-priori strength to 8-bit RGB cutouts (N, 3, H, W) ``uint8``.
Scores and their hyperparameters may be compared on these; the suites stay test data.

* ``sharpen`` — unsharp mask, x + 1.0 (x − G₁ * x) with a 1-pixel Gaussian G₁;
* ``jpeg`` — a JPEG round trip at quality 25 (block artefacts, chroma subsampling);
* ``gradient`` — a linear background ramp of ±12 levels across the stamp, random direction;
* ``hot_pixels`` — 8 random pixels set to 255 in every channel;
* ``brightness`` — every pixel value × 1.4 (clipped at 255);
* ``channel_swap`` — R and B exchanged;
* ``offcentre`` — the stamp shifted cyclically by 12 pixels along a random axis.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def sharpen(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = pixels.astype(np.float64)
    return _clip(x + (x - ndimage.gaussian_filter(x, (0, 0, 1, 1))))


def jpeg(pixels: np.ndarray, rng: np.random.Generator, quality: int = 25) -> np.ndarray:
    out = np.empty_like(pixels)
    for i, img in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(img.transpose(1, 2, 0)).save(buffer, "JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer).convert("RGB")).transpose(2, 0, 1)
    return out


def gradient(pixels: np.ndarray, rng: np.random.Generator, amplitude: float = 12) -> np.ndarray:
    n, _, h, w = pixels.shape
    angle = rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.indices((h, w)) / (h - 1) - 0.5
    ramp = 2 * amplitude * (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy)
    return _clip(pixels + ramp[:, None])


def hot_pixels(pixels: np.ndarray, rng: np.random.Generator, count: int = 8) -> np.ndarray:
    out = pixels.copy()
    n, _, h, w = pixels.shape
    rows = np.repeat(np.arange(n), count)
    out[rows, :, rng.integers(0, h, n * count), rng.integers(0, w, n * count)] = 255
    return out


def brightness(pixels: np.ndarray, rng: np.random.Generator, factor: float = 1.4) -> np.ndarray:
    return _clip(pixels.astype(np.float64) * factor)


def channel_swap(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(pixels[:, ::-1])


def offcentre(pixels: np.ndarray, rng: np.random.Generator, shift: int = 12) -> np.ndarray:
    out = np.empty_like(pixels)
    axis = rng.integers(2, 4, len(pixels))
    for i, (img, a) in enumerate(zip(pixels, axis, strict=True)):
        out[i] = np.roll(img, shift, axis=int(a) - 1)
    return out


CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "sharpen": sharpen,
    "jpeg": jpeg,
    "gradient": gradient,
    "hot_pixels": hot_pixels,
    "brightness": brightness,
    "channel_swap": channel_swap,
    "offcentre": offcentre,
}


def corrupt(name: str, pixels: np.ndarray, seed: int = 0) -> np.ndarray:
    """``pixels`` (N, 3, H, W) uint8 with corruption ``name`` applied (seeded)."""
    if name not in CORRUPTIONS:
        raise KeyError(f"unknown corruption {name!r}; choose from {sorted(CORRUPTIONS)}")
    pixels = np.asarray(pixels, np.uint8)
    return CORRUPTIONS[name](
        pixels, np.random.default_rng([seed, 7, list(CORRUPTIONS).index(name)])
    )
