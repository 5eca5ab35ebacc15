"""Repository-relative locations of everything a run reads or writes.

Notebooks and library code never hard-code a path: they ask this module. The root is the
repository checkout (``lib/astrogen`` is two levels below it), or ``$ASTROGEN_ROOT`` if set.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("ASTROGEN_ROOT") or Path(__file__).resolve().parents[2])
DATA = ROOT / "data"
FIGURES = ROOT / "figures"
NOTEBOOKS = ROOT / "notebooks"


def dataset_dir(study: str) -> Path:
    """``data/<study>/``: simulated or converted data sets."""
    return _ensure(DATA / study)


def checkpoint_dir(study: str) -> Path:
    """``data/checkpoints/<study>/``: model weights and their provenance sidecars."""
    return _ensure(DATA / "checkpoints" / study)


def runs_dir(profile: str) -> Path:
    """``data/runs/<profile>/``: executed notebooks."""
    return _ensure(DATA / "runs" / profile)


def metrics_dir(profile: str) -> Path:
    """``data/metrics/<profile>/``: one flat JSON of headline numbers per notebook."""
    return _ensure(DATA / "metrics" / profile)


def _profile(profile: str | None) -> str:
    return profile or os.environ.get("ASTROGEN_PROFILE", "default")


def figure_dir(study: str, profile: str | None = None) -> Path:
    """``figures/<study>/``: PNG figures — for ``smoke`` runs (and the tests)
    ``data/runs/smoke/figures/<study>/`` instead, so they never overwrite the committed figures.

    ``profile`` defaults to ``$ASTROGEN_PROFILE`` (else ``default``).
    """
    if _profile(profile) == "smoke":
        return _ensure(runs_dir("smoke") / "figures" / study)
    return _ensure(FIGURES / study)


def results_table(profile: str | None = None) -> Path:
    """``figures/RESULTS.md``, or ``data/runs/smoke/RESULTS.md`` for ``smoke`` runs."""
    if _profile(profile) == "smoke":
        return runs_dir("smoke") / "RESULTS.md"
    return _ensure(FIGURES) / "RESULTS.md"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
