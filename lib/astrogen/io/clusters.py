"""Real-format cluster tables: observables/targets CSVs and image embeddings aligned by file name.

Two layouts are read, as in the cINN-Clusters repository: processed, row-aligned ``X.csv`` /
``Y.csv`` (plus an optional ``meta.csv`` with an id or file-name column), or raw observables and
unobservables CSVs joined on an id column. Columns are chosen by name. Every error names the file,
the column and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


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


def _read(path: str | Path, columns: list[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ClusterTableError(f"{path}: file not found")
    frame = pd.read_csv(path)
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
        for frame, path in ((fx, x_csv), (fy, y_csv)):
            dup = frame[id_column].duplicated()
            if dup.any():
                raise ClusterTableError(
                    f"{path}: column {id_column!r} has duplicate ids, e.g. "
                    f"{frame[id_column][dup].iloc[0]!r}; expected one row per cluster"
                )
        merged = fx[keys + list(x_columns)].merge(fy[keys + list(y_columns)], on=id_column)
        if len(merged) == 0:
            raise ClusterTableError(f"{x_csv} and {y_csv}: no common ids in column {id_column!r}")
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
            ids = meta.iloc[:, 0].astype(str).to_numpy()
    return ClusterTable(
        x=_numeric(fx, list(x_columns), x_csv),
        theta=_numeric(fy, list(y_columns), y_csv),
        ids=ids,
        x_columns=list(x_columns),
        theta_columns=list(y_columns),
    )


def load_embeddings(
    embeddings_npy: str | Path, filenames_npy: str | Path, ids: np.ndarray
) -> np.ndarray:
    """Embedding rows (N, E) in the order of ``ids``, matched by file name (extension ignored).

    Raises:
        ClusterTableError: length mismatch, NaNs, or an id without an embedding.
    """
    emb = np.load(embeddings_npy, allow_pickle=False)
    names = np.load(filenames_npy, allow_pickle=False).astype(str)
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
