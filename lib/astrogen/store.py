"""Cached artifacts addressed by a hash of their builder's parameters.

Every artifact is a main file plus a JSON provenance sidecar (parameters, seed, library
versions, wall time, and the main file's size and SHA-256). Both are written atomically
(temporary file + ``os.replace``) and the sidecar is written *last*, so a run killed mid-write
leaves nothing a later run will load. Loading verifies the main file against its sidecar: a
missing or unreadable sidecar, a file whose size or hash differs from the recorded one, or a
file that does not read back is reported once (:class:`CorruptArtifactWarning`, naming the
file and what was wrong), discarded and rebuilt. Arrays go to ``.npz`` (never pickles) and
weights to ``state_dict`` files read with ``torch.load(..., weights_only=True)``.

Building an artifact holds a lock (``<artifact>.lock`` beside it, ``fcntl.flock``), so two
processes that ask for the same artifact at once build it once: the second waits and then loads
what the first saved. Temporary files that a killed writer left behind are removed by the next
write to their folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrogen import paths
from astrogen import provenance as _provenance
from astrogen.processes import process_alive

# A temporary file whose writer's process is gone is removed on the next write to its folder;
# one named without a process id (older code) once it is this old.
_STALE_TMP_S = 60.0
_CHUNK = 1 << 20


class ConfigMismatchError(RuntimeError):
    """A checkpoint was asked for with a configuration other than the one it was built with."""


class CorruptArtifactError(FileNotFoundError):
    """An artifact failed verification; it was discarded (and is rebuilt when next needed)."""


class CorruptArtifactWarning(UserWarning):
    """An artifact failed verification and was discarded, to be rebuilt."""


def is_cached(path: Path) -> bool:
    """Whether the artifact at ``path`` (main file + sidecar) may be reused.

    The main file is checked against the size and SHA-256 its sidecar records; an artifact that
    fails the check is reported (:class:`CorruptArtifactWarning`) and removed, so it is rebuilt.

    ``$ASTROGEN_FORCE`` (set by ``run_all.py --force``) marks artifacts stale. With
    ``$ASTROGEN_RUN_START`` (a Unix time, also set by ``run_all.py``) only artifacts built before
    the run started are stale, so each is rebuilt once and then shared by the run's later
    notebooks.
    """
    return _reusable(path) is not None


def canonical_json(obj: Any) -> str:
    """Stable JSON text: sorted keys, no whitespace variation, numpy scalars as Python ones."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_to_builtin)


def param_hash(params: Mapping[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of ``params``."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:12]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    Temporary files that killed writers left in the same folder are removed first.
    """
    _atomic_write(path, write)
    return Path(path)


def file_checksum(path: Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex digest}`` of the file at ``path``."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def content_fingerprint(
    path: Path | str, suffixes: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The content of a user's file or folder, for the cache keys of what is built from it.

    A file gives ``{"size", "sha256"}`` of its bytes; a folder gives ``{"files", "size",
    "sha256"}`` over every file below it (relative path, size and bytes, in sorted order), or only
    those whose suffix is in ``suffixes``. Hashed once per listing (paths, sizes, modification
    times) in a process, so asking again is cheap.
    """
    root = Path(path).resolve()
    if root.is_file():
        files = [root]
    else:
        files = sorted(
            p for p in root.rglob("*")
            if p.is_file() and (suffixes is None or p.suffix.lower() in suffixes)
        )  # fmt: skip
    listing = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return dict(_content_digest(str(root), root.is_file(), listing))


@functools.lru_cache(maxsize=64)
def _content_digest(root: str, is_file: bool, listing: tuple) -> tuple:
    digest = hashlib.sha256()
    for name, size, _ in listing:
        if not is_file:
            digest.update(f"{Path(name).relative_to(root)}\0{size}\0".encode())
        with open(name, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    total = sum(size for _, size, _ in listing)
    if is_file:
        return (("size", total), ("sha256", digest.hexdigest()))
    return (("files", len(listing)), ("size", total), ("sha256", digest.hexdigest()))


def write_json(path: Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write arrays to an uncompressed ``.npz``."""
    _write_npz(path, arrays)
    return Path(path)


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


def lock_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".lock")


def artifact_path(directory: Path, name: str, params: Mapping[str, Any], suffix: str) -> Path:
    """``<directory>/<name>-<hash(params)><suffix>``."""
    return Path(directory) / f"{name}-{param_hash(params)}{suffix}"


@contextlib.contextmanager
def artifact_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the artifact at ``path`` (waiting for another holder).

    The lock file is removed on release; a holder that finds its lock file replaced or removed
    after waiting locks the new one, so two processes never hold the lock of one artifact.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(lock)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the previous holder removed the file while we waited: lock afresh
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)
        os.close(fd)


def cached_arrays(
    directory: Path,
    name: str,
    params: Mapping[str, Any],
    build: Callable[[], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Load the arrays built with ``params`` or build, save (atomically) and return them.

    A cached copy that fails verification is reported, discarded and rebuilt. The build holds
    the artifact's lock, so concurrent callers build it once.
    """
    path = artifact_path(directory, name, params, ".npz")
    arrays = _load_cached_arrays(path)
    if arrays is not None:
        return arrays
    with artifact_lock(path):
        arrays = _load_cached_arrays(path)  # built by another process while we waited
        if arrays is not None:
            return arrays
        start = time.perf_counter()
        arrays = {k: np.asarray(v) for k, v in build().items()}
        checksum = _write_npz(path, arrays)
        record = provenance(params, time.perf_counter() - start, checksum=checksum)
        write_json(sidecar_path(path), record)
    return arrays


def save_state(
    path: Path,
    module: torch.nn.Module,
    params: Mapping[str, Any],
    config: Mapping[str, Any],
    **extra: Any,
) -> Path:
    """Atomically save ``module.state_dict()`` and its sidecar (with the file's checksum).

    Args:
        params: what the weights were built from (data and training settings); checked on load.
        config: what rebuilds the architecture before the weights are loaded.
        extra: further JSON for the sidecar (e.g. a training history).
    """
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    checksum = _atomic_write(path, lambda tmp: torch.save(state, tmp))
    record = {
        "params": dict(params),
        "config": dict(config),
        "provenance": _provenance.record(
            profile=os.environ.get("ASTROGEN_PROFILE"), params_hash=param_hash(params)
        ),
        **extra,
        "checksum": checksum,
    }
    write_json(sidecar_path(path), record)
    return Path(path)


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
        CorruptArtifactError: (a ``FileNotFoundError``) if the checkpoint failed verification;
            it was reported and removed.
        ConfigMismatchError: if the stored parameters differ, naming the differing keys.
    """
    side = sidecar_path(path)
    if not (Path(path).exists() or side.exists()):
        raise FileNotFoundError(f"{path}: checkpoint and its sidecar {side.name} are missing")
    record = _verified(path)
    if record is None:
        raise CorruptArtifactError(f"{path}: checkpoint failed verification and was removed")
    return _load_verified_state(path, record, rebuild, params)


def cached_model(
    path: Path,
    params: Mapping[str, Any],
    train: Callable[[], tuple[torch.nn.Module, Mapping[str, Any], Mapping[str, Any]]],
    rebuild: Callable[[dict], torch.nn.Module],
) -> tuple[torch.nn.Module, dict]:
    """Load the model built with ``params`` from ``path``, or train, save and return it.

    A cached checkpoint that fails verification is reported, discarded and retrained. Training
    holds the checkpoint's lock, so concurrent callers train it once.

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
        loaded = _load_cached_model(path, rebuild, params)
        if loaded is not None:
            return loaded
        with artifact_lock(path):
            loaded = _load_cached_model(path, rebuild, params)  # trained meanwhile elsewhere
            if loaded is not None:
                return loaded
            start = time.perf_counter()
            module, config, extra = train()
            wall = round(time.perf_counter() - start, 3)
            save_state(path, module, params, config, wall_s=wall, **extra)
    return module, json.loads(sidecar_path(path).read_text())


# ---------------------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Path], None]) -> dict[str, Any]:
    """:func:`atomic_write`, returning the checksum of what was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    os.close(fd)
    try:
        write(Path(tmp))
        checksum = file_checksum(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return checksum


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return _atomic_write(path, write)


def _remove_stale_temps(folder: Path) -> None:
    """Remove ``.<name>.<pid>.<random>.tmp`` files whose writing process has ended."""
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".")]
    except OSError:
        return
    for tmp in candidates:
        if not tmp.name.endswith(".tmp") or not tmp.is_file():
            continue
        parts = tmp.name[1 : -len(".tmp")].rsplit(".", 2)
        if len(parts) == 3 and parts[1].isdigit():
            stale = not process_alive(int(parts[1]))
        else:
            try:
                stale = time.time() - tmp.stat().st_mtime > _STALE_TMP_S
            except FileNotFoundError:
                continue
        if stale:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _discard(path: Path, reason: str) -> None:
    """Report a bad artifact (once, naming the file) and remove its main file and sidecar."""
    warnings.warn(
        f"{path}: {reason}; discarded, it is rebuilt", CorruptArtifactWarning, stacklevel=4
    )
    for p in (Path(path), sidecar_path(path)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _reusable(path: Path) -> dict | None:
    """The sidecar record if the artifact exists, is not stale (``--force``) and verifies."""
    path, side = Path(path), sidecar_path(path)
    if not (path.exists() and side.exists()):
        return _verified(path)  # nothing there, or half an artifact (reported and removed)
    if os.environ.get("ASTROGEN_FORCE", "") not in ("", "0"):
        run_start = os.environ.get("ASTROGEN_RUN_START")
        if run_start is None or side.stat().st_mtime < float(run_start):
            return None  # stale: rebuilt and overwritten, no need to check it
    return _verified(path)


def _verified(path: Path) -> dict | None:
    """The sidecar record if the main file matches it; otherwise report, remove, ``None``."""
    path, side = Path(path), sidecar_path(path)
    has_main, has_side = path.exists(), side.exists()
    if not (has_main or has_side):
        return None
    if not has_side:
        _discard(path, f"sidecar {side.name} is missing (an interrupted write?)")
        return None
    if not has_main:
        _discard(path, f"the file is missing but its sidecar {side.name} exists")
        return None
    try:
        record = json.loads(side.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError included
        _discard(path, f"sidecar {side.name} is unreadable ({type(err).__name__}: {err})")
        return None
    recorded = record.get("checksum")
    try:
        actual = file_checksum(path)
    except OSError as err:
        _discard(path, f"unreadable ({type(err).__name__}: {err})")
        return None
    if recorded is None:
        # a sidecar without a checksum cannot vouch for its file: rebuild rather than trust it
        _discard(path, f"sidecar {side.name} records no checksum, so the file cannot be verified")
        return None
    if not isinstance(recorded, dict) or not {"size", "sha256"} <= recorded.keys():
        _discard(path, f"sidecar {side.name} has a malformed checksum {recorded!r}")
        return None
    if actual["size"] != recorded["size"]:
        _discard(
            path,
            f"size is {actual['size']} bytes but its sidecar records {recorded['size']} "
            "(truncated or overwritten)",
        )
        return None
    if actual["sha256"] != recorded["sha256"]:
        _discard(
            path,
            f"SHA-256 {actual['sha256'][:12]}… differs from the {recorded['sha256'][:12]}… "
            "its sidecar records (the file was altered)",
        )
        return None
    return record


def _load_cached_arrays(path: Path) -> dict[str, np.ndarray] | None:
    if _reusable(path) is None:
        return None
    try:
        return load_npz(path)
    except Exception as err:  # zipfile, zlib, numpy format and OS errors alike
        _discard(path, f"unreadable ({type(err).__name__}: {err})")
        return None


def _load_cached_model(
    path: Path, rebuild: Callable[[dict], torch.nn.Module], params: Mapping[str, Any]
) -> tuple[torch.nn.Module, dict] | None:
    record = _reusable(path)
    if record is None:
        return None
    try:
        return _load_verified_state(path, record, rebuild, params)
    except CorruptArtifactError:
        return None


def _load_verified_state(
    path: Path,
    record: dict,
    rebuild: Callable[[dict], torch.nn.Module],
    params: Mapping[str, Any],
) -> tuple[torch.nn.Module, dict]:
    stored = json.loads(canonical_json(record.get("params", {})))
    wanted = json.loads(canonical_json(dict(params)))
    if stored != wanted:
        keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise ConfigMismatchError(
            f"{path}: checkpoint was built with different parameters (keys {keys}); "
            "refusing to load it"
        )
    if not isinstance(record.get("config"), dict):
        _discard(path, f"sidecar {sidecar_path(path).name} has no architecture config")
        raise CorruptArtifactError(f"{path}: sidecar without config; removed")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a file that verifies but does not read back
        _discard(path, f"unreadable ({type(err).__name__}: {err})")
        raise CorruptArtifactError(f"{path}: unreadable checkpoint; removed") from err
    module = rebuild(record["config"])
    module.load_state_dict(state)
    module.eval()
    return module, record


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj.relative_to(paths.ROOT)) if obj.is_relative_to(paths.ROOT) else str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
