"""NIHAO-style per-galaxy star arrays, image folders and GalacticFlow-style cleaning.

A galaxy file is either ``.npz`` with ``stars`` (N, 10) in the column order of
:data:`astrogen.sims.galforge.COLUMNS` and a scalar ``log_mass`` (log10 M*/M☉), or ``.npy`` holding
the (N, 10) stars alone (then ``log_mass`` is passed in, e.g. from a table of galaxies). A
population (:func:`load_population`) is a folder ::

    <root>/galaxies/<name>.npz         (or <name>.npy, with <root>/galaxies.csv: name, log_mass)
    <root>/images/<name>/*.png         one or more RGB projections of that galaxy (PNG/JPEG)

Stars are in kpc, km/s and Gyr; files that look like pc, m/s or yr are refused (they would
otherwise lose every star to the cleaning cuts). Errors name the file, the key and the
expectation; a galaxy dropped by the cleaning is named in a warning with the cut that removed
its stars.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from astrogen import store
from astrogen.io.anomaly import EXTENSIONS, image_size, load_images, save_images
from astrogen.sims.galforge import COLUMNS, CONDITIONS, T_MAX, global_parameters


class GalaxyFileError(ValueError):
    """A galaxy file is missing a key or holds values the loader cannot accept."""


# Beyond these a file is in other units: the median |x|, |y|, |z| of a galaxy's stars is a few
# kpc (thousands in pc), the median speed a few hundred km/s (10⁵ in m/s), the oldest star
# ≤ 13.8 Gyr (10¹⁰ in yr, 10⁴ in Myr).
UNIT_LIMITS = {
    "position": (("x", "y", "z"), "median", 100.0, "kpc", "pc"),
    "velocity": (("vx", "vy", "vz"), "median", 1e4, "km/s", "m/s"),
    "age": (("age",), "max", 100.0, "Gyr", "yr or Myr"),
}


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _scalar_log_mass(value, path: Path, where: str) -> float:
    array = np.asarray(value)
    if array.size != 1 or array.ndim > 1:
        raise GalaxyFileError(
            f"{path}: {where} has shape {array.shape}; expected one number, log10 M*/M☉ "
            "(a scalar: np.savez(..., log_mass=9.5))"
        )
    try:
        return float(array.reshape(()))
    except (TypeError, ValueError) as err:
        raise GalaxyFileError(
            f"{path}: {where} is {array.reshape(())!r}; expected a number, log10 M*/M☉"
        ) from err


def check_units(stars: np.ndarray, path: Path | str) -> None:
    """Refuse stars whose positions, velocities or ages look like pc, m/s or yr."""
    for what, (columns, stat, limit, unit, other) in UNIT_LIMITS.items():
        for column in columns:
            values = np.abs(stars[:, COLUMNS.index(column)])
            value = float(np.median(values) if stat == "median" else values.max())
            if value > limit:
                raise GalaxyFileError(
                    f"{path}: column {column!r} ({what}) has {stat} |{column}| = {value:.3g}, "
                    f"above {limit:g}; expected {unit} (the values look like {other}) — convert "
                    f"the stars to {unit}"
                )


def load_galaxy(path: Path | str, log_mass: float | None = None) -> tuple[np.ndarray, float]:
    """``(stars (N, 10) float64, log_mass)`` from a ``.npz`` or ``.npy`` galaxy file."""
    path = Path(path)
    if not path.is_file():
        raise GalaxyFileError(f"{path}: no such file")
    if path.suffix not in (".npz", ".npy"):
        raise GalaxyFileError(f"{path}: unknown format; expected .npz or .npy")
    if path.stat().st_size == 0:
        raise GalaxyFileError(f"{path}: empty file (0 bytes); expected a {path.suffix} galaxy")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ...
        raise GalaxyFileError(
            f"{path}: not a readable {path.suffix} file ({_first_line(err)}); it may be "
            "truncated or hold pickled objects"
        ) from err
    is_archive = not isinstance(loaded, np.ndarray)
    if is_archive and path.suffix == ".npy":
        loaded.close()
        raise GalaxyFileError(
            f"{path}: a .npz archive named .npy; expected the (N, {len(COLUMNS)}) stars alone "
            "(or rename it .npz)"
        )
    if not is_archive and path.suffix == ".npz":
        raise GalaxyFileError(
            f"{path}: a single .npy array named .npz; expected an archive with 'stars' and "
            "'log_mass' (np.savez) — or name it .npy and give log_mass in galaxies.csv"
        )
    if is_archive:
        try:
            with loaded as data:
                if "stars" not in data:
                    raise GalaxyFileError(
                        f"{path}: no 'stars' array; keys are {sorted(data.files)}"
                    )
                stars = data["stars"]
                if log_mass is None:
                    if "log_mass" not in data:
                        raise GalaxyFileError(f"{path}: no scalar 'log_mass' (log10 M*/M☉)")
                    log_mass = _scalar_log_mass(data["log_mass"], path, "'log_mass'")
        except GalaxyFileError:
            raise
        except Exception as err:  # a damaged member: BadZipFile (CRC), zlib.error, ValueError
            raise GalaxyFileError(
                f"{path}: cannot read the archive's arrays ({_first_line(err)}); the file may "
                "be damaged or hold pickled objects; expected 'stars' and 'log_mass' arrays"
            ) from err
    else:
        stars = loaded
        if log_mass is None:
            raise GalaxyFileError(f"{path}: a .npy holds only stars; pass log_mass")
    log_mass = _scalar_log_mass(log_mass, path, "log_mass")
    if not np.issubdtype(np.asarray(stars).dtype, np.number):
        raise GalaxyFileError(
            f"{path}: 'stars' has dtype {np.asarray(stars).dtype}; expected numbers (N, "
            f"{len(COLUMNS)})"
        )
    stars = np.asarray(stars, dtype=float)
    if stars.ndim != 2 or stars.shape[1] != len(COLUMNS):
        raise GalaxyFileError(
            f"{path}: 'stars' has shape {stars.shape}; expected (N, {len(COLUMNS)}) with columns "
            f"{COLUMNS}"
        )
    if len(stars) == 0:
        raise GalaxyFileError(f"{path}: 'stars' has no rows; expected (N, {len(COLUMNS)}), N > 0")
    bad = ~np.isfinite(stars)
    if bad.any():
        column = COLUMNS[int(np.nonzero(bad.any(0))[0][0])]
        raise GalaxyFileError(
            f"{path}: {int(bad.any(1).sum())} star(s) with NaN/infinite values (first in column "
            f"{column!r}); expected finite numbers"
        )
    if not np.isfinite(log_mass) or not 4 < log_mass < 14:
        raise GalaxyFileError(f"{path}: log_mass = {log_mass}; expected log10 M*/M☉ in (4, 14)")
    check_units(stars, path)
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
    rows, stars, images, dropped = [], [], [], []
    for path in files:
        if path.suffix == ".npy" and path.stem not in masses:
            raise GalaxyFileError(f"{root / 'galaxies.csv'}: no log_mass for galaxy {path.stem!r}")
        raw, log_mass = load_galaxy(path, masses.get(path.stem))
        kept, report = clean_galaxy(raw, min_stars=min_stars)
        if not report["keep"]:
            cuts = ", ".join(
                f"{report[f'removed_{k}']} by {k}" for k in ("radius", "metallicity", "age")
            )
            dropped.append(f"{path.name} ({report['n_out']} of {report['n_in']} left; {cuts})")
            continue
        pictures = _galaxy_images(root / "images" / path.stem, image_size)
        rows.append({"name": path.stem, **global_parameters(kept, log_mass),
                     "n_removed": report["n_in"] - report["n_out"]})  # fmt: skip
        stars.append(kept.astype(np.float32))
        images.append(pictures)
    if dropped:
        warnings.warn(
            f"{folder}: dropped {len(dropped)} of {len(files)} galaxies with fewer than "
            f"{min_stars} stars after cleaning (as GalacticFlow does): {'; '.join(dropped[:5])}"
            + (f"; and {len(dropped) - 5} more" if len(dropped) > 5 else ""),
            UserWarning,
            stacklevel=2,
        )
    if not rows:
        raise GalaxyFileError(
            f"{folder}: no galaxy keeps {min_stars} stars after cleaning: {'; '.join(dropped[:5])}"
        )
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
    if path.stat().st_size == 0:
        raise GalaxyFileError(f"{path}: empty file (0 bytes); expected a name,log_mass table")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise GalaxyFileError(
            f"{path}: not a readable CSV table ({_first_line(err)}); expected name,log_mass"
        ) from err
    missing = {"name", "log_mass"} - set(table.columns)
    if missing:
        raise GalaxyFileError(
            f"{path}: missing column(s) {sorted(missing)}; expected name,log_mass"
        )
    masses = pd.to_numeric(table["log_mass"], errors="coerce")
    bad = masses.isna()
    if bad.any():
        raise GalaxyFileError(
            f"{path}: column 'log_mass' has {int(bad.sum())} empty or non-numeric value(s) (first "
            f"rows {np.flatnonzero(bad.to_numpy())[:5].tolist()}); expected log10 M*/M☉"
        )
    names = table["name"].astype(str)
    if names.duplicated().any():
        raise GalaxyFileError(
            f"{path}: column 'name' repeats {names[names.duplicated()].iloc[0]!r}; expected one "
            "row per galaxy"
        )
    return dict(zip(names, masses.astype(float), strict=True))


def _galaxy_images(folder: Path, size: int) -> np.ndarray:
    """Every projection of one galaxy, (P, 3, size, size) float32 in [0, 1]."""
    if not folder.is_dir():
        raise GalaxyFileError(f"{folder}: no such directory (expected the galaxy's images)")
    first = next((p for p in sorted(folder.iterdir()) if p.suffix.lower() in EXTENSIONS), None)
    native = image_size(first)[0] if first is not None else size
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
