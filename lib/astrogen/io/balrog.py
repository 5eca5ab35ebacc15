"""Real Balrog-style injection catalogues, in the column convention of the mini-Balrog simulator.

A Balrog catalogue has one row per injection: the deep-field (true) fluxes of the injected
galaxy, the wide-field measurement (observed fluxes, meaningful only where the injection was
detected), a detection flag and the observing conditions at the injection's position. Columns
are chosen by name, per band, so any survey's naming works. CSV is read by pandas, Parquet
needs ``pyarrow`` (or ``fastparquet``), FITS needs ``astropy``. Every error names the file, the
column and what was expected.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from astrogen.sims.balrog import flux_to_mag


class BalrogCatalogueError(ValueError):
    """A Balrog catalogue lacks a column or holds values the loader cannot accept."""


# Magnitudes handed over as fluxes: every value in this range (and none brighter), which for
# linear fluxes would be an implausibly narrow catalogue, is what AB magnitudes look like.
MAGNITUDE_LIKE = (10.0, 35.0)


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        kind, read = "CSV", pd.read_csv
    elif name.endswith((".parquet", ".pq")):
        if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
            raise BalrogCatalogueError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow)"
            )
        kind, read = "Parquet", pd.read_parquet
    elif name.endswith((".fits", ".fit", ".fits.gz")):
        if importlib.util.find_spec("astropy") is None:
            raise BalrogCatalogueError(f"{path}: reading FITS needs astropy (pip install astropy)")
        from astropy.table import Table

        kind, read = "FITS", lambda p: Table.read(p, format="fits").to_pandas()
    else:
        raise BalrogCatalogueError(
            f"{path}: unknown format; expected .csv, .csv.gz, .parquet, .pq, .fits or .fits.gz"
        )
    if path.stat().st_size == 0:
        raise BalrogCatalogueError(f"{path}: empty file (0 bytes); expected a {kind} catalogue")
    try:
        return read(path)
    except Exception as err:  # each reader has its own errors (ArrowInvalid, OSError, ...)
        lines = str(err).strip().splitlines()
        raise BalrogCatalogueError(
            f"{path}: not a readable {kind} catalogue ({type(err).__name__}: "
            f"{lines[0] if lines else ''}); the file may be truncated or in another format"
        ) from err


def _not_magnitudes(values: np.ndarray, column: str, path: Path, what: str) -> None:
    """Refuse a flux column whose values all look like magnitudes."""
    finite = values[np.isfinite(values)]
    lo, hi = MAGNITUDE_LIKE
    if len(finite) and finite.min() >= lo and finite.max() <= hi:
        raise BalrogCatalogueError(
            f"{path}: column {column!r} ({what}) holds only values in [{finite.min():.3g}, "
            f"{finite.max():.3g}], which look like magnitudes; expected linear fluxes "
            f"(magnitude = zero_point − 2.5 log10 flux) — convert them or pass the flux column"
        )


def _numeric(frame: pd.DataFrame, column: str, path: Path, what: str) -> np.ndarray:
    """The column as floats, or an error naming the rows that are not finite numbers."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise BalrogCatalogueError(
            f"{path}: column {column!r} ({what}) has {int(bad.sum())} NaN/non-numeric/infinite "
            f"value(s) (first rows {np.flatnonzero(bad)[:5].tolist()}); expected finite numbers"
        )
    return values


def _flag(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = frame[column]
    if values.dtype == bool:
        return values.to_numpy()
    numbers = pd.to_numeric(values, errors="coerce")
    bad = ~numbers.isin([0, 1])
    if bad.any():
        examples = list(dict.fromkeys(values[bad].astype(str)))[:5]
        raise BalrogCatalogueError(
            f"{path}: column {column!r} (detection flag) has {int(bad.sum())} value(s) that are "
            f"not boolean or 0/1, e.g. {examples}"
        )
    return numbers.to_numpy() == 1


def load_balrog_catalogue(
    path: str | Path,
    true_flux_columns: dict[str, str],
    obs_flux_columns: dict[str, str],
    detected_column: str,
    condition_columns: dict[str, str],
    zero_point: float = 30.0,
    *,
    obs_flux_err_columns: dict[str, str] | None = None,
    deep_id_column: str | None = None,
    position_columns: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Read an injection catalogue into the columns of :func:`astrogen.sims.balrog.run_injections`.

    Args:
        path: a ``.csv``, Parquet or FITS file, one row per injection.
        true_flux_columns, obs_flux_columns: band → column of the true (deep-field) and the
            observed (wide-field) flux, linear with magnitude ``zero_point`` − 2.5 log10 F.
            Both must name the same bands.
        detected_column: boolean or 0/1 detection flag.
        condition_columns: output name → column, e.g. ``{"psf_fwhm_r": "FWHM_R"}``; the
            simulator's names are ``psf_fwhm_<band>`` (arcsec) and ``sky_sigma_<band>``.
        obs_flux_err_columns: band → column of the observed flux's error (optional).
        deep_id_column: the deep-field galaxy's id; without it every row is its own galaxy.
        position_columns: (ra, dec) columns in degrees (optional).

    Returns:
        ``deep_id`` (as the file holds it: any type, any size; map it to a dense range with
        ``np.unique(..., return_inverse=True)``), ``injection_id`` (row number), [``ra``, ``dec``], per band ``true_mag_b``,
        ``obs_mag_b``, ``obs_flux_b`` [, ``obs_flux_err_b``], the conditions, ``detected``.
        Observed values are NaN where the injection was not detected, whatever the file holds
        there (often a sentinel); ``obs_mag_b`` is NaN also where the observed flux is ≤ 0.

    Raises:
        BalrogCatalogueError: unreadable, empty or corrupt file, no rows, missing column, NaN or
            non-numeric truth or conditions, non-positive true flux, a sky σ or PSF FWHM ≤ 0,
            flux columns that hold magnitudes, non-finite observed flux of a detected row, a
            flag that is not boolean/0-1, empty deep ids, or mismatched bands.
    """
    path = Path(path)
    if not path.exists():
        raise BalrogCatalogueError(f"{path}: file not found")
    if set(true_flux_columns) != set(obs_flux_columns):
        raise BalrogCatalogueError(
            f"{path}: true_flux_columns has bands {sorted(true_flux_columns)} but "
            f"obs_flux_columns has {sorted(obs_flux_columns)}; expected the same bands"
        )
    err_columns = obs_flux_err_columns or {}
    if err_columns and set(err_columns) != set(obs_flux_columns):
        raise BalrogCatalogueError(
            f"{path}: obs_flux_err_columns has bands {sorted(err_columns)}, expected "
            f"{sorted(obs_flux_columns)}"
        )
    frame = _read_table(path)
    wanted = [
        *true_flux_columns.values(),
        *obs_flux_columns.values(),
        *err_columns.values(),
        detected_column,
        *condition_columns.values(),
        *([deep_id_column] if deep_id_column else []),
        *(position_columns or ()),
    ]
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        raise BalrogCatalogueError(
            f"{path}: missing column(s) {missing}; the file has {list(frame.columns)}"
        )

    if len(frame) == 0:
        raise BalrogCatalogueError(
            f"{path}: no rows (columns {list(frame.columns)}); expected one row per injection"
        )
    detected = _flag(frame, detected_column, path)
    out = {
        "deep_id": _deep_ids(frame, deep_id_column, path),
        "injection_id": np.arange(len(frame)),
    }
    if position_columns:
        for name, column in zip(("ra", "dec"), position_columns, strict=True):
            out[name] = _numeric(frame, column, path, name)
    for band, column in true_flux_columns.items():
        flux = _numeric(frame, column, path, f"true {band} flux")
        if (flux <= 0).any():
            rows = np.flatnonzero(flux <= 0)[:5].tolist()
            raise BalrogCatalogueError(
                f"{path}: column {column!r} (true {band} flux) has {int((flux <= 0).sum())} "
                f"non-positive value(s) (first rows {rows}); expected fluxes > 0"
            )
        _not_magnitudes(flux, column, path, f"true {band} flux")
        out[f"true_mag_{band}"] = flux_to_mag(flux, zero_point)
        observed = {"obs_flux": obs_flux_columns[band]}
        if err_columns:
            observed["obs_flux_err"] = err_columns[band]
        for name, col in observed.items():
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
            bad = detected & ~np.isfinite(values)
            if bad.any():
                raise BalrogCatalogueError(
                    f"{path}: column {col!r} ({name} {band}) is NaN/non-numeric in "
                    f"{int(bad.sum())} detected row(s) (first rows {np.flatnonzero(bad)[:5].tolist()}); "
                    "expected finite values wherever the detection flag is set"
                )
            values = np.where(detected, values, np.nan)
            if name == "obs_flux":
                _not_magnitudes(values, col, path, f"observed {band} flux")
                out[f"obs_mag_{band}"] = flux_to_mag(values, zero_point)
            out[f"{name}_{band}"] = values
    for name, column in condition_columns.items():
        values = _numeric(frame, column, path, f"condition {name}")
        if name.startswith(POSITIVE_CONDITIONS) and (values <= 0).any():
            rows = np.flatnonzero(values <= 0)[:5].tolist()
            raise BalrogCatalogueError(
                f"{path}: column {column!r} (condition {name}) has {int((values <= 0).sum())} "
                f"zero or negative value(s) (first rows {rows}); expected {name.split('_')[0]} "
                f"{'σ' if name.startswith('sky_sigma') else 'FWHM'} > 0"
            )
        out[name] = values
    out["detected"] = detected
    return pd.DataFrame(out)


# conditions that are widths: a sky noise σ or a PSF FWHM of zero or below is not a measurement
POSITIVE_CONDITIONS = ("sky_sigma", "psf_fwhm")


def _deep_ids(frame: pd.DataFrame, column: str | None, path: Path) -> np.ndarray:
    """The deep-field ids as the file holds them (any type, any size: never cast to int);
    without a column every row is its own galaxy."""
    if column is None:
        return np.arange(len(frame))
    ids = frame[column]
    empty = ids.isna()
    if empty.any():
        raise BalrogCatalogueError(
            f"{path}: column {column!r} (deep id) has {int(empty.sum())} empty value(s) (first "
            f"rows {np.flatnonzero(empty.to_numpy())[:5].tolist()}); expected an id in every row"
        )
    values = ids.to_numpy()
    if values.dtype == object:  # FITS strings arrive as bytes
        values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], object)
    return values
