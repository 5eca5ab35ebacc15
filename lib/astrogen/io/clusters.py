"""Real-format cluster tables: observables/targets CSVs and image embeddings aligned by file name.

Two layouts are read, as in the cINN-Clusters repository: processed, row-aligned ``X.csv`` /
``Y.csv`` (plus an optional ``meta.csv`` with an id or file-name column), or raw observables and
unobservables CSVs joined on an id column. Columns are chosen by name. Every error names the file,
the column and what was expected; ids of one table without a partner in the other are dropped
with a warning that counts them and names a few.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# the first bytes of binary formats sometimes handed over instead of a CSV table
_MAGIC = {
    b"PAR1": "a Parquet file",
    b"SIMPLE  =": "a FITS file",
    b"\x93NUMPY": "a .npy array",
    b"PK\x03\x04": "a zip archive (.npz?)",
    b"\x89HDF": "an HDF5 file",
}


class ClusterTableError(ValueError):
    """A cluster table or embedding file does not have the expected columns, rows or values."""


@dataclass
class ClusterTable:
    """``x`` (N, C) observables, ``theta`` (N, D) targets and ``ids`` (N,) as strings."""

    x: np.ndarray
    theta: np.ndarray
    ids: np.ndarray
    x_columns: list[str]
    theta_columns: list[str]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _read(path: str | Path, columns: list[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ClusterTableError(f"{path}: file not found")
    if not path.is_file():
        raise ClusterTableError(f"{path}: not a file; expected a CSV table")
    if path.stat().st_size == 0:
        raise ClusterTableError(f"{path}: empty file (0 bytes); expected a CSV table with a header")
    with open(path, "rb") as handle:
        head = handle.read(16)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind is not None:
        raise ClusterTableError(f"{path}: {kind}, not a CSV table; expected comma-separated text")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, OSError, EOFError) as err:
        raise ClusterTableError(
            f"{path}: not a readable CSV table ({_first_line(err)}); expected comma-separated "
            "text with a header row"
        ) from err
    if len(frame) == 0:
        raise ClusterTableError(
            f"{path}: no rows (only the header {list(frame.columns)}); expected one row per cluster"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ClusterTableError(
            f"{path}: missing column(s) {missing}; the file has {list(frame.columns)}"
        )
    return frame


def _numeric(frame: pd.DataFrame, columns: list[str], path: str | Path) -> np.ndarray:
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    for col in columns:
        bad = values[col].isna() | ~np.isfinite(values[col].to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            rows = list(np.flatnonzero(bad.to_numpy())[:5])
            raise ClusterTableError(
                f"{path}: column {col!r} has {int(bad.sum())} NaN/non-numeric/infinite value(s) "
                f"(first rows {rows}); expected finite numbers"
            )
    return values.to_numpy(dtype=float)


def load_cluster_tables(
    x_csv: str | Path,
    y_csv: str | Path,
    x_columns: list[str],
    y_columns: list[str],
    *,
    id_column: str | None = None,
    meta_csv: str | Path | None = None,
) -> ClusterTable:
    """Read observables and targets, aligned row by row or joined on ``id_column``.

    Args:
        x_csv, y_csv: observables and targets (``X.csv``/``Y.csv`` or raw tables).
        x_columns, y_columns: the columns to use, in order.
        id_column: join the two tables on this column (raw layout). Without it the files must
            have the same number of rows, and ``meta_csv`` (if given, same length) supplies ids
            from its first column.

    Raises:
        ClusterTableError: missing file or column, mismatched rows or ids, NaN or non-numbers.
    """
    keys = [id_column] if id_column else []
    fx = _read(x_csv, keys + list(x_columns))
    fy = _read(y_csv, keys + list(y_columns))
    if id_column:
        fx, fy = fx.copy(), fy.copy()
        for frame, path in ((fx, x_csv), (fy, y_csv)):
            empty = frame[id_column].isna()
            if empty.any():
                raise ClusterTableError(
                    f"{path}: column {id_column!r} has {int(empty.sum())} empty id(s) (first rows "
                    f"{np.flatnonzero(empty.to_numpy())[:5].tolist()}); expected an id in every row"
                )
            # ids compare as text, so "7" in one file matches 7 in the other
            frame[id_column] = frame[id_column].astype(str)
            dup = frame[id_column].duplicated()
            if dup.any():
                raise ClusterTableError(
                    f"{path}: column {id_column!r} has duplicate ids, e.g. "
                    f"{frame[id_column][dup].iloc[0]!r}; expected one row per cluster"
                )
        _check_overlap(fx[id_column], fy[id_column], x_csv, y_csv, id_column)
        merged = fx[keys + list(x_columns)].merge(fy[keys + list(y_columns)], on=id_column)
        ids = merged[id_column].astype(str).to_numpy()
        fx = fy = merged
    else:
        if len(fx) != len(fy):
            raise ClusterTableError(
                f"{x_csv} has {len(fx)} rows but {y_csv} has {len(fy)}; expected aligned rows "
                "(or pass id_column to join them)"
            )
        ids = np.arange(len(fx)).astype(str)
        if meta_csv is not None:
            meta = _read(meta_csv, [])
            if len(meta) != len(fx):
                raise ClusterTableError(
                    f"{meta_csv} has {len(meta)} rows but {x_csv} has {len(fx)}; expected aligned rows"
                )
            if meta.shape[1] == 0:
                raise ClusterTableError(f"{meta_csv}: no columns; expected ids in the first column")
            ids = meta.iloc[:, 0].astype(str).to_numpy()
    return ClusterTable(
        x=_numeric(fx, list(x_columns), x_csv),
        theta=_numeric(fy, list(y_columns), y_csv),
        ids=ids,
        x_columns=list(x_columns),
        theta_columns=list(y_columns),
    )


def _check_overlap(
    x_ids: pd.Series, y_ids: pd.Series, x_csv: str | Path, y_csv: str | Path, id_column: str
) -> None:
    """Error if the tables share no id; warn, with counts and examples, about ids they drop."""
    only_x = x_ids[~x_ids.isin(set(y_ids))].tolist()
    only_y = y_ids[~y_ids.isin(set(x_ids))].tolist()
    if len(only_x) == len(x_ids):
        raise ClusterTableError(
            f"{x_csv} and {y_csv}: no common ids in column {id_column!r} (e.g. {x_ids.tolist()[:3]} "
            f"vs {y_ids.tolist()[:3]}); expected the same clusters in both tables"
        )
    parts = [
        f"{len(ids)} of {n} row(s) of {path} have no partner in {other}, e.g. {ids[:3]}"
        for ids, n, path, other in (
            (only_x, len(x_ids), x_csv, y_csv),
            (only_y, len(y_ids), y_csv, x_csv),
        )
        if ids
    ]
    if parts:
        kept = len(x_ids) - len(only_x)
        warnings.warn(
            f"joining on column {id_column!r} dropped unmatched ids: {'; '.join(parts)}; "
            f"{kept} cluster(s) are kept",
            UserWarning,
            stacklevel=3,
        )


def _load_npy(path: str | Path, what: str) -> np.ndarray:
    """One array from a ``.npy`` file, or an error naming the file and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise ClusterTableError(f"{path}: file not found; expected a .npy of {what}")
    if path.stat().st_size == 0:
        raise ClusterTableError(f"{path}: empty file (0 bytes); expected a .npy of {what}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ...
        raise ClusterTableError(
            f"{path}: not a readable .npy array ({_first_line(err)}); expected a .npy of {what} "
            "(np.save, no pickled objects)"
        ) from err
    if not isinstance(loaded, np.ndarray):
        keys = sorted(loaded.files)
        loaded.close()
        raise ClusterTableError(
            f"{path}: a .npz archive (keys {keys}); expected a single .npy array of {what}"
        )
    return loaded


def load_embeddings(
    embeddings_npy: str | Path, filenames_npy: str | Path, ids: np.ndarray
) -> np.ndarray:
    """Embedding rows (N, E) in the order of ``ids``, matched by file name (extension ignored).

    Raises:
        ClusterTableError: length mismatch, NaNs, or an id without an embedding.
    """
    emb = _load_npy(embeddings_npy, "embeddings (n_files, embedding_dim)")
    names = _load_npy(filenames_npy, "file names (n_files,)")
    if names.ndim != 1:
        raise ClusterTableError(
            f"{filenames_npy}: shape {names.shape}; expected one file name per embedding (n_files,)"
        )
    names = names.astype(str)
    if not (np.issubdtype(emb.dtype, np.number) or emb.dtype == bool):
        raise ClusterTableError(
            f"{embeddings_npy}: dtype {emb.dtype}; expected numbers (n_files, embedding_dim)"
        )
    if emb.ndim != 2 or len(emb) != len(names):
        raise ClusterTableError(
            f"{embeddings_npy}: shape {emb.shape} does not match {len(names)} names in "
            f"{filenames_npy}; expected (n_files, embedding_dim)"
        )
    if not np.isfinite(emb).all():
        raise ClusterTableError(f"{embeddings_npy}: contains NaN or infinite values")
    stems = {Path(n).stem: i for i, n in enumerate(names)}
    missing = [i for i in ids if Path(str(i)).stem not in stems]
    if missing:
        raise ClusterTableError(
            f"{filenames_npy}: no embedding for {len(missing)} cluster(s), e.g. {missing[:3]}; "
            "expected one file name per table row"
        )
    return emb[[stems[Path(str(i)).stem] for i in ids]]
