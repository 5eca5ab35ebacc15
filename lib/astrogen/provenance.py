"""Where a result came from: the commit (and whether the tree was dirty) and package versions.

Recorded in every artifact sidecar and metrics file, so each number can be traced to the code
that made it. Files a run itself writes (``figures/``, ``README.md``'s results table, ``data/``)
do not make the tree dirty.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess

from astrogen import paths

PACKAGES = ("numpy", "scipy", "torch", "zuko", "FrEIA", "scikit-learn", "sep", "astropy")
# Written by runs, so never a sign of uncommitted code.
_OUTPUTS = (":!figures", ":!README.md", ":!data")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=paths.ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def commit() -> dict[str, str | bool | None]:
    """``{"commit": full hash or None, "dirty": bool or None}`` of the repository's work tree."""
    head = _git("rev-parse", "HEAD")
    if head is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *_OUTPUTS)
    return {"commit": head, "dirty": bool(status)}


@functools.cache
def versions() -> dict[str, str]:
    """Python's and the numerical packages' versions."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def record(**extra: object) -> dict:
    """The provenance block: commit, dirty flag, versions and ``extra`` (profile, seed, …)."""
    return {**commit(), "versions": versions(), **extra}


def short(info: dict) -> str:
    """``abc1234`` (``abc1234+dirty``) of a provenance block, ``unknown`` without a commit."""
    head = info.get("commit")
    if not head:
        return "unknown"
    return head[:7] + ("+dirty" if info.get("dirty") else "")
