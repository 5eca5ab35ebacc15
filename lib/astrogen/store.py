"""Cached artifacts addressed by a hash of their builder's parameters.

Every artifact is a main file plus a JSON provenance sidecar (parameters, seed, library
versions, wall time). Both are written atomically (temporary file + ``os.replace``) and the
sidecar is written *last*, so an artifact is trusted only if its sidecar exists: a run killed
mid-write leaves nothing a later run will load. Arrays go to ``.npz`` (never pickles) and
weights to ``state_dict`` files read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrogen import paths
from astrogen import provenance as _provenance


class ConfigMismatchError(RuntimeError):
    """A checkpoint was asked for with a configuration other than the one it was built with."""


def is_cached(path: Path) -> bool:
    """Whether the artifact at ``path`` (main file + sidecar) may be reused.

    ``$ASTROGEN_FORCE`` (set by ``run_all.py --force``) marks artifacts stale. With
    ``$ASTROGEN_RUN_START`` (a Unix time, also set by ``run_all.py``) only artifacts built before
    the run started are stale, so each is rebuilt once and then shared by the run's later
    notebooks.
    """
    side = sidecar_path(path)
    if not (Path(path).exists() and side.exists()):
        return False
    if os.environ.get("ASTROGEN_FORCE", "") in ("", "0"):
        return True
    run_start = os.environ.get("ASTROGEN_RUN_START")
    return run_start is not None and side.stat().st_mtime >= float(run_start)


def canonical_json(obj: Any) -> str:
    """Stable JSON text: sorted keys, no whitespace variation, numpy scalars as Python ones."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_to_builtin)


def param_hash(params: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of ``params``."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:12]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path: Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write arrays to an uncompressed ``.npz``."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` without allowing pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def provenance(params: Mapping[str, Any], wall_s: float, **extra: Any) -> dict:
    """The sidecar record: parameters, commit, versions, profile and timing."""
    return {
        "params": dict(params),
        "wall_s": round(wall_s, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "provenance": _provenance.record(
            profile=os.environ.get("ASTROGEN_PROFILE"), params_hash=param_hash(params)
        ),
        **extra,
    }


def sidecar_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".json")


def artifact_path(directory: Path, name: str, params: Mapping[str, Any], suffix: str) -> Path:
    """``<directory>/<name>-<hash(params)><suffix>``."""
    return Path(directory) / f"{name}-{param_hash(params)}{suffix}"


def cached_arrays(
    directory: Path,
    name: str,
    params: Mapping[str, Any],
    build: Callable[[], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Load the arrays built with ``params`` or build, save (atomically) and return them."""
    path = artifact_path(directory, name, params, ".npz")
    if is_cached(path):
        return load_npz(path)
    start = time.perf_counter()
    arrays = {k: np.asarray(v) for k, v in build().items()}
    save_npz(path, arrays)
    write_json(sidecar_path(path), provenance(params, time.perf_counter() - start))
    return arrays


def save_state(
    path: Path,
    module: torch.nn.Module,
    params: Mapping[str, Any],
    config: Mapping[str, Any],
    **extra: Any,
) -> Path:
    """Atomically save ``module.state_dict()`` and its sidecar.

    Args:
        params: what the weights were built from (data and training settings); checked on load.
        config: what rebuilds the architecture before the weights are loaded.
        extra: further JSON for the sidecar (e.g. a training history).
    """
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    record = {
        "params": dict(params),
        "config": dict(config),
        "provenance": _provenance.record(
            profile=os.environ.get("ASTROGEN_PROFILE"), params_hash=param_hash(params)
        ),
        **extra,
    }
    write_json(sidecar_path(path), record)
    return path


def load_state(
    path: Path,
    rebuild: Callable[[dict], torch.nn.Module],
    params: Mapping[str, Any],
) -> tuple[torch.nn.Module, dict]:
    """Rebuild a module from its sidecar config and load its weights, if built with ``params``.

    Returns:
        ``(module, sidecar record)``.

    Raises:
        FileNotFoundError: if the weights or their sidecar are missing.
        ConfigMismatchError: if the stored parameters differ, naming the differing keys.
    """
    side = sidecar_path(path)
    if not (Path(path).exists() and side.exists()):
        raise FileNotFoundError(f"{path}: checkpoint or its sidecar {side.name} is missing")
    record = json.loads(side.read_text())
    stored = json.loads(canonical_json(record.get("params", {})))
    wanted = json.loads(canonical_json(dict(params)))
    if stored != wanted:
        keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise ConfigMismatchError(
            f"{path}: checkpoint was built with different parameters (keys {keys}); "
            "refusing to load it"
        )
    module = rebuild(record["config"])
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    module.eval()
    return module, record


def cached_model(
    path: Path,
    params: Mapping[str, Any],
    train: Callable[[], tuple[torch.nn.Module, Mapping[str, Any], Mapping[str, Any]]],
    rebuild: Callable[[dict], torch.nn.Module],
) -> tuple[torch.nn.Module, dict]:
    """Load the model built with ``params`` from ``path``, or train, save and return it.

    Args:
        train: returns ``(module, config, extra)``: the trained module, the JSON config that
            ``rebuild`` turns back into its architecture, and extra sidecar JSON.
        rebuild: config → untrained module of the same architecture.

    Returns:
        ``(module, sidecar record)``.
    """
    # Training and rebuilding draw from a forked RNG, so whatever the caller samples next is the
    # same whether the model was just trained or loaded from the cache.
    with torch.random.fork_rng():
        if is_cached(path):
            return load_state(path, rebuild, params)
        start = time.perf_counter()
        module, config, extra = train()
    wall = round(time.perf_counter() - start, 3)
    save_state(path, module, params, config, wall_s=wall, **extra)
    return module, json.loads(sidecar_path(path).read_text())


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj.relative_to(paths.ROOT)) if obj.is_relative_to(paths.ROOT) else str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
