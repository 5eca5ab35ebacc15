"""Galaxy cutout folders in the seed's layout, read into (N, 3, H, W) float32 RGB in [0, 1].

The GANomaly seed (Jin et al. 2024) expects ::

    <name>/train/0.normal/*.png         observed images the detector learns ("normal")
    <name>/test/0.normal/*.png          held-out observed images (the score's reference)
    <name>/test/1.abnormal/*.png        images to rate (e.g. one simulation suite)

or two plain folders (:func:`load_rating_folder`)::

    <name>/observed/*.png               observed images (split into train / validation / test)
    <name>/simulated/*.png              images to rate

PNG and JPEG are read with Pillow; every image must be RGB of the expected size. Errors name the
file and what was expected. :func:`write_image_folder` writes the same layout (PNG), e.g. to
hand the simulated sky to other code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from astrogen import store

EXTENSIONS = (".png", ".jpg", ".jpeg")
LAYOUT = {
    "train": ("train", "0.normal"),
    "test_normal": ("test", "0.normal"),
    "test_abnormal": ("test", "1.abnormal"),
}


SEED_LAYOUT = (
    "<root>/train/0.normal/*.png, <root>/test/0.normal/*.png, <root>/test/1.abnormal/*.png"
)
PLAIN_LAYOUT = "<root>/observed/*.png and <root>/simulated/*.png"


class ImageFolderError(ValueError):
    """A cutout folder is missing, empty, or holds an image the loader cannot accept."""


def image_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of one PNG/JPEG, or an :class:`ImageFolderError` naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageFolderError(f"{path}: not a readable PNG/JPEG image ({err})") from err


def load_images(
    folder: Path | str, size: int = 64, *, layout: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Every PNG/JPEG in ``folder`` (sorted by name): ((N, 3, size, size) float32, file names).

    ``layout`` (text) is added to the error for a missing or empty folder, to say where the
    images were expected."""
    folder = Path(folder)
    where = f"; expected the layout {layout}" if layout else ""
    if not folder.is_dir():
        raise ImageFolderError(f"{folder}: no such directory{where}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
    if not files:
        others = sorted(p.name for p in folder.iterdir())[:3]
        found = f"; found only {others}" if others else "; the folder is empty"
        raise ImageFolderError(
            f"{folder}: no images (expected files ending in {EXTENSIONS}){found}{where}"
        )
    out = np.empty((len(files), 3, size, size), np.float32)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                image.load()
                mode, shape = image.mode, image.size
                pixels = np.asarray(image)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise ImageFolderError(f"{path}: not a readable PNG/JPEG image ({err})") from err
        if mode != "RGB":
            raise ImageFolderError(f"{path}: image mode {mode!r}; expected 'RGB' (3 colour bands)")
        if shape != (size, size):
            raise ImageFolderError(
                f"{path}: image is {shape[0]}×{shape[1]} pixels; expected {size}×{size}"
            )
        out[i] = pixels.transpose(2, 0, 1) / np.float32(255)
    return out, [p.name for p in files]


def load_image_folder(root: Path | str, size: int = 64) -> dict[str, np.ndarray]:
    """The three sets of the seed layout under ``root``: keys of :data:`LAYOUT`, plus
    ``<key>_names``. ``train`` is required; an empty or missing test folder gives 0 images."""
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(f"{root}: no such directory (expected the seed's folder layout)")
    out: dict[str, np.ndarray] = {}
    for key, parts in LAYOUT.items():
        folder = root.joinpath(*parts)
        has_images = folder.is_dir() and any(
            p.suffix.lower() in EXTENSIONS for p in folder.iterdir()
        )
        if key == "train" or has_images:
            images, names = load_images(folder, size, layout=SEED_LAYOUT)
        else:
            images, names = np.empty((0, 3, size, size), np.float32), []
        out[key], out[f"{key}_names"] = images, np.array(names)
    return out


def load_two_folders(
    observed: Path | str, simulated: Path | str, size: int = 64
) -> dict[str, np.ndarray]:
    """A folder of observed and a folder of simulated cutouts: keys ``observed``, ``simulated``
    ((N, 3, size, size) float32 in [0, 1]) and ``<key>_names``; both must hold images."""
    out: dict[str, np.ndarray] = {}
    for key, folder in (("observed", observed), ("simulated", simulated)):
        images, names = load_images(folder, size, layout=PLAIN_LAYOUT)
        out[key], out[f"{key}_names"] = images, np.array(names)
    return out


def load_rating_folder(root: Path | str, size: int = 64) -> dict:
    """Observed and simulated cutouts under ``root``, in either form the study accepts.

    Seed layout (``train/0.normal`` present): ``observed`` = ``train/0.normal``, plus
    ``test_normal`` (held-out observed, possibly empty) and ``simulated`` = ``test/1.abnormal``
    (possibly empty). Two plain folders: ``observed/`` and ``simulated/``. The dictionary also
    holds ``<key>_names``, ``layout`` (``"seed"`` or ``"plain"``) and ``simulated_folder``.

    Raises:
        ImageFolderError: for a missing root, a root in neither form, or a bad image (naming
            the file).
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(f"{root}: no such directory")
    if root.joinpath(*LAYOUT["train"]).is_dir():
        seed = load_image_folder(root, size)
        return {
            "layout": "seed", "observed": seed["train"], "observed_names": seed["train_names"],
            "test_normal": seed["test_normal"], "test_normal_names": seed["test_normal_names"],
            "simulated": seed["test_abnormal"], "simulated_names": seed["test_abnormal_names"],
            "simulated_folder": str(root.joinpath(*LAYOUT["test_abnormal"])),
        }  # fmt: skip
    if (root / "observed").is_dir() and (root / "simulated").is_dir():
        two = load_two_folders(root / "observed", root / "simulated", size)
        return {"layout": "plain", **two, "simulated_folder": str(root / "simulated")}
    raise ImageFolderError(
        f"{root}: neither the seed's layout (train/0.normal, test/0.normal, test/1.abnormal) "
        "nor two plain folders (observed/, simulated/)"
    )


def folder_fingerprint(root: Path | str) -> str:
    """SHA-256 (16 hex digits) of every image file's relative path and bytes under ``root``:
    a cache key that changes whenever the folder's images do."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_image_folder(root: Path | str, sets: dict[str, np.ndarray]) -> Path:
    """Write (N, 3, H, W) RGB arrays in [0, 1] under the :data:`LAYOUT` keys as 8-bit PNGs."""
    root = Path(root)
    for key, images in sets.items():
        if key not in LAYOUT:
            raise KeyError(f"unknown set {key!r}; choose from {sorted(LAYOUT)}")
        save_images(root.joinpath(*LAYOUT[key]), images, prefix=key)
    return root


def save_images(folder: Path | str, images: np.ndarray, prefix: str) -> None:
    """Write (N, 3, H, W) RGB in [0, 1] as 8-bit ``<prefix>_<i>.png`` files in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, rgb in enumerate(pixels):
        store.atomic_write(
            folder / f"{prefix}_{i:06d}.png", lambda tmp, a=rgb: Image.fromarray(a).save(tmp, "PNG")
        )
