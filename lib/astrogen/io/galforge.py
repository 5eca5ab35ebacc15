"""NIHAO-style per-galaxy star arrays, image folders and GalacticFlow-style cleaning.

A galaxy file is either ``.npz`` with ``stars`` (N, 10) in the column order of
:data:`astrogen.sims.galforge.COLUMNS` and a scalar ``log_mass`` (log10 M*/M☉), or ``.npy`` holding
the (N, 10) stars alone (then ``log_mass`` is passed in, e.g. from a table of galaxies). A
population (:func:`load_population`) is a folder ::

    <root>/galaxies/<name>.npz         (or <name>.npy, with <root>/galaxies.csv: name, log_mass)
    <root>/images/<name>/*.png         one or more RGB projections of that galaxy (PNG/JPEG)

Errors name the file, the key and the expectation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from astrogen import store
from astrogen.io.anomaly import EXTENSIONS, load_images, save_images
from astrogen.sims.galforge import COLUMNS, CONDITIONS, T_MAX, global_parameters


class GalaxyFileError(ValueError):
    """A galaxy file is missing a key or holds values the loader cannot accept."""


def load_galaxy(path: Path | str, log_mass: float | None = None) -> tuple[np.ndarray, float]:
    """``(stars (N, 10) float64, log_mass)`` from a ``.npz`` or ``.npy`` galaxy file."""
    path = Path(path)
    if not path.is_file():
        raise GalaxyFileError(f"{path}: no such file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "stars" not in data:
                raise GalaxyFileError(f"{path}: no 'stars' array; keys are {sorted(data.files)}")
            stars = data["stars"]
            if log_mass is None:
                if "log_mass" not in data:
                    raise GalaxyFileError(f"{path}: no scalar 'log_mass' (log10 M*/M☉)")
                log_mass = float(data["log_mass"])
    elif path.suffix == ".npy":
        stars = np.load(path, allow_pickle=False)
        if log_mass is None:
            raise GalaxyFileError(f"{path}: a .npy holds only stars; pass log_mass")
    else:
        raise GalaxyFileError(f"{path}: unknown format; expected .npz or .npy")
    stars = np.asarray(stars, dtype=float)
    if stars.ndim != 2 or stars.shape[1] != len(COLUMNS):
        raise GalaxyFileError(
            f"{path}: 'stars' has shape {stars.shape}; expected (N, {len(COLUMNS)}) with columns "
            f"{COLUMNS}"
        )
    bad = ~np.isfinite(stars)
    if bad.any():
        column = COLUMNS[int(np.nonzero(bad.any(0))[0][0])]
        raise GalaxyFileError(
            f"{path}: {int(bad.any(1).sum())} star(s) with NaN/infinite values (first in column "
            f"{column!r}); expected finite numbers"
        )
    if not np.isfinite(log_mass) or not 4 < log_mass < 14:
        raise GalaxyFileError(f"{path}: log_mass = {log_mass}; expected log10 M*/M☉ in (4, 14)")
    return stars, float(log_mass)


def clean_galaxy(
    stars: np.ndarray,
    *,
    radius_percentile: float = 95.0,
    max_radius: float = 28.0,
    feh_floor: float = -5.0,
    min_stars: int = 1000,
) -> tuple[np.ndarray, dict[str, float]]:
    """Cut a galaxy's stars as GalacticFlow does before training.

    Removes stars beyond the ``radius_percentile`` of the 3-D radius, capped at ``max_radius``
    kpc; stars with Z ≤ 0, [Fe/H] < ``feh_floor`` (the simulation's metallicity floor) or ages
    outside [0, 13.8] Gyr. The report counts each cut and says whether at least ``min_stars``
    remain (``keep``); galaxies that fail are dropped by the caller.
    """
    stars = np.asarray(stars, float)
    radius = np.linalg.norm(stars[:, :3], axis=1)
    r_cut = min(float(np.percentile(radius, radius_percentile)), max_radius)
    z, feh, age = (stars[:, COLUMNS.index(c)] for c in ("Z", "feh", "age"))
    cuts = {
        "radius": radius > r_cut,
        "metallicity": (z <= 0) | (feh < feh_floor),
        "age": (age < 0) | (age > T_MAX),
    }
    drop = np.logical_or.reduce(list(cuts.values()))
    kept = stars[~drop]
    report = {f"removed_{k}": int(v.sum()) for k, v in cuts.items()}
    report.update(r_cut=r_cut, n_in=len(stars), n_out=len(kept), keep=len(kept) >= min_stars)
    return kept, report


def load_population(root: Path | str, image_size: int, min_stars: int = 1000) -> dict:
    """A folder of real galaxies in the layout above, cleaned with :func:`clean_galaxy`.

    Returns the structure of the simulated population (``astrogen.studies.galforge.dataset``):
    ``galaxies`` (table: ``name``, the :data:`CONDITIONS` measured from the cleaned stars,
    ``n_removed``), ``stars`` (N, 10) float32, ``star_galaxy`` (N,), ``images``
    (M, 3, image_size, image_size) float32 in [0, 1] and ``image_galaxy`` (M,). Galaxies left
    with fewer than ``min_stars`` stars are dropped, as GalacticFlow does; images of another
    size are resampled to ``image_size`` (the autoencoder's input).
    """
    root = Path(root)
    folder = root / "galaxies"
    if not folder.is_dir():
        raise GalaxyFileError(f"{folder}: no such directory (expected <root>/galaxies/<name>.npz)")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".npz", ".npy"))
    if not files:
        raise GalaxyFileError(f"{folder}: no galaxy files (expected <name>.npz or <name>.npy)")
    masses = _mass_table(root) if any(p.suffix == ".npy" for p in files) else {}
    rows, stars, images = [], [], []
    for path in files:
        if path.suffix == ".npy" and path.stem not in masses:
            raise GalaxyFileError(f"{root / 'galaxies.csv'}: no log_mass for galaxy {path.stem!r}")
        raw, log_mass = load_galaxy(path, masses.get(path.stem))
        kept, report = clean_galaxy(raw, min_stars=min_stars)
        if not report["keep"]:
            continue
        pictures = _galaxy_images(root / "images" / path.stem, image_size)
        rows.append({"name": path.stem, **global_parameters(kept, log_mass),
                     "n_removed": report["n_in"] - report["n_out"]})  # fmt: skip
        stars.append(kept.astype(np.float32))
        images.append(pictures)
    if not rows:
        raise GalaxyFileError(f"{folder}: no galaxy keeps {min_stars} stars after cleaning")
    galaxies = pd.DataFrame(rows)[["name", *CONDITIONS, "n_removed"]]
    return {
        "galaxies": galaxies,
        "stars": np.concatenate(stars),
        "star_galaxy": np.repeat(np.arange(len(rows)), [len(s) for s in stars]),
        "images": np.concatenate(images),
        "image_galaxy": np.repeat(np.arange(len(rows)), [len(i) for i in images]),
    }


def _mass_table(root: Path) -> dict[str, float]:
    """name → log_mass from ``<root>/galaxies.csv`` (needed for ``.npy`` galaxy files)."""
    path = root / "galaxies.csv"
    if not path.is_file():
        raise GalaxyFileError(f"{path}: no such file; .npy galaxies need a name,log_mass table")
    table = pd.read_csv(path)
    missing = {"name", "log_mass"} - set(table.columns)
    if missing:
        raise GalaxyFileError(
            f"{path}: missing column(s) {sorted(missing)}; expected name,log_mass"
        )
    return dict(zip(table["name"].astype(str), table["log_mass"].astype(float), strict=True))


def _galaxy_images(folder: Path, size: int) -> np.ndarray:
    """Every projection of one galaxy, (P, 3, size, size) float32 in [0, 1]."""
    if not folder.is_dir():
        raise GalaxyFileError(f"{folder}: no such directory (expected the galaxy's images)")
    first = next((p for p in sorted(folder.iterdir()) if p.suffix.lower() in EXTENSIONS), None)
    native = Image.open(first).size[0] if first is not None else size
    images, _ = load_images(folder, native)
    if native == size:
        return images
    # area averaging keeps the total light when shrinking (e.g. the seed's 448² to 64²)
    mode = "area" if size < native else "bilinear"
    return F.interpolate(torch.as_tensor(images), size=(size, size), mode=mode).numpy()


def write_population(root: Path | str, data: dict) -> Path:
    """Write a population (the structure :func:`load_population` returns) in the folder layout:
    e.g. the mock galaxies, to hand them to other code or to exercise the real-data path."""
    root = Path(root)
    (root / "galaxies").mkdir(parents=True, exist_ok=True)
    for g, galaxy in data["galaxies"].iterrows():
        name = str(galaxy.get("name", f"g{g:04d}"))
        stars = data["stars"][data["star_galaxy"] == g]
        store.atomic_write(
            root / "galaxies" / f"{name}.npz",
            lambda tmp, s=stars, m=galaxy["log_mass"]: _save_npz(tmp, stars=s, log_mass=m),
        )
        save_images(root / "images" / name, data["images"][data["image_galaxy"] == g], "view")
    return root


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    # through a handle: np.savez would append ".npz" to the temporary file's name
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
