"""Loader for the seed study's phase-space catalogues (``np.savez`` with ``pos`` and ``vel``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrogen.constants import KPC
from astrogen.store import save_npz

# A galaxy's median stellar radius lies between ~10 pc and ~1 Mpc; in metres that is
# 3e17–3e22. Values far below mean the file is in kpc (or another unit), not SI.
_SI_RADIUS_RANGE = (1e-3 * KPC, 1e3 * KPC)
# A galaxy's median stellar speed lies between a few km/s and a few thousand km/s: 1e3–1e7 m/s.
# A catalogue in km/s has medians of 10–1000, below the range, and is refused.
_SI_SPEED_RANGE = (1e3, 1e7)


class CatalogueFormatError(ValueError):
    """A catalogue file does not hold what the loader expects; the message says what."""


def load_phase_space_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read positions [m] and velocities [m/s] from a seed-format ``.npz``.

    Expects arrays ``pos`` and ``vel``, both float (N, 3), finite, in SI units.

    Raises:
        CatalogueFormatError: naming the file, the key and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such catalogue file")
    if path.stat().st_size == 0:
        raise CatalogueFormatError(
            f"{path}: empty file (0 bytes); expected a .npz with 'pos', 'vel'"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError, OSError, EOFError, BadZipFile, ...
        raise CatalogueFormatError(
            f"{path}: not a readable .npz archive ({_describe(err)})"
        ) from err
    if isinstance(loaded, np.ndarray):
        raise CatalogueFormatError(
            f"{path}: a single .npy array of shape {loaded.shape}, not a .npz archive; expected "
            "np.savez(path, pos=..., vel=...)"
        )
    try:
        with loaded as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # a damaged member: BadZipFile (bad CRC-32), zlib.error, ValueError
        raise CatalogueFormatError(
            f"{path}: cannot read the archive's arrays ({_describe(err)}); the file may be "
            "damaged or hold pickled objects; expected float arrays 'pos' and 'vel'"
        ) from err
    missing = [k for k in ("pos", "vel") if k not in arrays]
    if missing:
        raise CatalogueFormatError(
            f"{path}: missing key(s) {missing}; expected 'pos' and 'vel', found {sorted(arrays)}"
        )
    for key in ("pos", "vel"):
        arr = arrays[key]
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise CatalogueFormatError(f"{path}: '{key}' has shape {arr.shape}; expected (N, 3)")
        if not np.issubdtype(arr.dtype, np.floating):
            raise CatalogueFormatError(f"{path}: '{key}' has dtype {arr.dtype}; expected float")
        if len(arr) == 0:
            raise CatalogueFormatError(f"{path}: '{key}' has no rows; expected (N, 3) with N > 0")
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            raise CatalogueFormatError(
                f"{path}: '{key}' has {bad.sum()} rows with NaN/inf (first at row {np.argmax(bad)})"
            )
    pos, vel = arrays["pos"].astype(np.float64), arrays["vel"].astype(np.float64)
    if len(pos) != len(vel):
        raise CatalogueFormatError(f"{path}: 'pos' has {len(pos)} rows but 'vel' has {len(vel)}")
    _check_units(path, "pos", np.median(np.linalg.norm(pos, axis=1)), _SI_RADIUS_RANGE, "m")
    _check_units(path, "vel", np.median(np.linalg.norm(vel, axis=1)), _SI_SPEED_RANGE, "m/s")
    return pos, vel


def save_phase_space_npz(path: str | Path, pos: np.ndarray, vel: np.ndarray) -> None:
    """Write a catalogue in the seed format (SI units), atomically."""
    save_npz(Path(path), {"pos": np.asarray(pos), "vel": np.asarray(vel)})


def _describe(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _check_units(path: Path, key: str, median: float, bounds: tuple, unit: str) -> None:
    lo, hi = bounds
    if not lo <= median <= hi:
        raise CatalogueFormatError(
            f"{path}: median |{key}| is {median:.3g}; expected SI units ({unit}), i.e. a value in "
            f"[{lo:.1e}, {hi:.1e}] — convert the catalogue to SI"
        )
