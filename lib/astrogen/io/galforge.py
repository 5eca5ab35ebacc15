"""NIHAO-style per-galaxy star arrays and GalacticFlow-style cleaning.

A galaxy file is either ``.npz`` with ``stars`` (N, 10) in the column order of
:data:`astrogen.sims.galforge.COLUMNS` and a scalar ``log_mass`` (log10 M*/M☉), or ``.npy`` holding
the (N, 10) stars alone (then ``log_mass`` is passed in, e.g. from a table of galaxies). Errors
name the file, the key and the expectation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrogen.sims.galforge import COLUMNS, T_MAX


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
