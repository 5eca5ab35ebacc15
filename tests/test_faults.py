"""Fault suite for the artifact store and the results table.

Every kind of artifact (arrays in ``.npz``, a module checkpoint in ``.pt``) is built through the
real store functions, corrupted in each way a disk, an editor or a killed run can corrupt it,
and asked for again: the load must report the file and what was wrong (one
:class:`~astrogen.store.CorruptArtifactWarning`), rebuild it exactly once, and give what a clean
build gives. Runs killed inside a build (SIGKILL, in a forked process) must leave nothing a later
run loads; two processes asking for one artifact at once must build it once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from astrogen import paths, results, store

PARAMS = {"n": 64, "seed": 3}
FORK = multiprocessing.get_context("fork")


# --- the two kinds of artifact ------------------------------------------------------------------


def build_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(PARAMS["seed"])
    return {"x": rng.normal(size=(PARAMS["n"], 3)), "label": np.arange(PARAMS["n"])}


def train_net() -> tuple[torch.nn.Module, dict, dict]:
    """A tiny "trained" module: weights from a seeded generator (no parallel torch kernels, which
    a forked child of a process that ran them may deadlock in)."""
    rng = np.random.default_rng(PARAMS["seed"])
    net = torch.nn.Linear(4, 3)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32)))
        net.bias.copy_(torch.from_numpy(rng.normal(size=3).astype(np.float32)))
    return net, {"in": 4, "out": 3}, {"history": [1.0, 0.5]}


def rebuild_net(cfg: dict) -> torch.nn.Module:
    return torch.nn.Linear(cfg["in"], cfg["out"])


class Kind:
    """One kind of artifact: where it lives, how it is asked for, and its content to compare."""

    def __init__(self, name: str):
        self.name = name

    def path(self, folder: Path) -> Path:
        if self.name == "npz":
            return store.artifact_path(folder, "arrays", PARAMS, ".npz")
        return store.artifact_path(folder, "net", PARAMS, ".pt")

    def get(self, folder: Path, calls: list | None = None) -> dict[str, np.ndarray]:
        """Ask the store for the artifact (building it if needed); its content as arrays."""
        calls = [] if calls is None else calls
        if self.name == "npz":

            def build():
                calls.append(os.getpid())
                return build_arrays()

            return store.cached_arrays(folder, "arrays", PARAMS, build)

        def train():
            calls.append(os.getpid())
            return train_net()

        net, record = store.cached_model(self.path(folder), PARAMS, train, rebuild_net)
        assert record["config"] == {"in": 4, "out": 3} and record["history"] == [1.0, 0.5]
        return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}

    def payload(self, content: dict[str, np.ndarray]) -> bytes:
        """Bytes of the stored data itself (an array's values, a weight matrix)."""
        key = "x" if self.name == "npz" else "weight"
        return np.ascontiguousarray(content[key]).tobytes()


KINDS = [Kind("npz"), Kind("pt")]


def assert_equal_content(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def artifact_names(path: Path) -> list[str]:
    return sorted([path.name, store.sidecar_path(path).name])


@pytest.fixture(autouse=True)
def _no_force(monkeypatch):
    monkeypatch.delenv("ASTROGEN_FORCE", raising=False)
    monkeypatch.delenv("ASTROGEN_RUN_START", raising=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """What a clean build of each kind holds."""
    return {k.name: k.get(tmp_path_factory.mktemp(f"clean-{k.name}")) for k in KINDS}


# --- corruptions --------------------------------------------------------------------------------


def _truncate(path: Path, kind: Kind, content) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path, kind: Kind, content) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 32] = bytes(b ^ 0x5A for b in data[mid : mid + 32])
    path.write_bytes(bytes(data))


def _bit_flip_payload(path: Path, kind: Kind, content) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(kind.payload(content))
    assert at >= 0, "the stored values are not in the file"
    data[at + 5] ^= 0x01  # one bit of one stored value
    path.write_bytes(bytes(data))


def _delete_sidecar(path: Path, kind: Kind, content) -> None:
    store.sidecar_path(path).unlink()


def _garble_sidecar(path: Path, kind: Kind, content) -> None:
    side = store.sidecar_path(path)
    side.write_text(side.read_text()[:40])  # JSON cut off mid-way


def _sidecar_not_an_object(path: Path, kind: Kind, content) -> None:
    store.sidecar_path(path).write_text("[1, 2]\n")


def _empty(path: Path, kind: Kind, content) -> None:
    path.write_bytes(b"")


def _delete_main(path: Path, kind: Kind, content) -> None:
    path.unlink()


def _wrong_checksum(path: Path, kind: Kind, content) -> None:
    side = store.sidecar_path(path)
    record = json.loads(side.read_text())
    record["checksum"]["sha256"] = "0" * 64
    side.write_text(json.dumps(record))


CORRUPTIONS = {
    "truncate": (_truncate, r"size is \d+ bytes but its sidecar records \d+"),
    "garble": (_garble, r"SHA-256 .* differs"),
    "bit_flip": (_bit_flip_payload, r"SHA-256 .* differs"),
    "zero_bytes": (_empty, r"size is 0 bytes"),
    "delete_sidecar": (_delete_sidecar, r"sidecar \S+\.json is missing"),
    "garble_sidecar": (_garble_sidecar, r"sidecar \S+\.json is unreadable \(JSONDecodeError"),
    "sidecar_not_object": (_sidecar_not_an_object, r"unreadable \(ValueError: not a JSON object"),
    "delete_main": (_delete_main, r"the file is missing but its sidecar"),
    "wrong_checksum": (_wrong_checksum, r"SHA-256 .* differs"),
}


def corrupt_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, store.CorruptArtifactWarning)]


@pytest.mark.fault
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_corrupted_artifact_is_reported_and_rebuilt_equal_to_a_clean_build(
    tmp_path, kind, corruption, clean
):
    corrupt, reason = CORRUPTIONS[corruption]
    calls: list[int] = []
    first = kind.get(tmp_path, calls)
    path = kind.path(tmp_path)
    corrupt(path, kind, first)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = kind.get(tmp_path, calls)
    messages = corrupt_warnings(caught)
    assert len(messages) == 1, messages  # reported once
    assert messages[0].startswith(f"{path}: ") and re.search(reason, messages[0]), messages[0]
    assert len(calls) == 2  # the first build and one rebuild
    assert_equal_content(rebuilt, clean[kind.name])
    assert names(tmp_path) == artifact_names(path)  # no temporary, no lock, nothing aside
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt artifact verifies: reused, silently
        assert_equal_content(kind.get(tmp_path, calls), clean[kind.name])
    assert len(calls) == 2


@pytest.mark.fault
def test_flipped_weights_load_without_the_checksum_but_are_caught_by_it(tmp_path, clean):
    """Torch's reader does not notice a flipped weight: only the recorded hash does."""
    kind = KINDS[1]
    kind.get(tmp_path)
    path = kind.path(tmp_path)
    _bit_flip_payload(path, kind, clean["pt"])
    state = torch.load(path, map_location="cpu", weights_only=True)  # reads back fine
    assert not np.array_equal(state["weight"].numpy(), clean["pt"]["weight"])
    with pytest.warns(store.CorruptArtifactWarning, match="SHA-256"):
        assert not store.is_cached(path)
    assert names(tmp_path) == []  # discarded


@pytest.mark.fault
@pytest.mark.parametrize("corruption", ["truncate", "bit_flip", "garble_sidecar"])
def test_load_state_of_a_corrupted_checkpoint_raises_naming_it(tmp_path, clean, corruption):
    kind = KINDS[1]
    kind.get(tmp_path)
    path = kind.path(tmp_path)
    CORRUPTIONS[corruption][0](path, kind, clean["pt"])
    with (
        pytest.warns(store.CorruptArtifactWarning, match=re.escape(str(path))),
        pytest.raises(store.CorruptArtifactError, match=re.escape(str(path))),
    ):
        store.load_state(path, rebuild_net, PARAMS)
    assert names(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="missing"):
        store.load_state(path, rebuild_net, PARAMS)


@pytest.mark.fault
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_sidecar_without_a_checksum_is_never_trusted(tmp_path, kind, clean):
    calls: list[int] = []
    kind.get(tmp_path, calls)
    side = store.sidecar_path(kind.path(tmp_path))
    record = json.loads(side.read_text())
    del record["checksum"]
    side.write_text(json.dumps(record))
    with pytest.warns(store.CorruptArtifactWarning, match="records no checksum"):
        assert_equal_content(kind.get(tmp_path, calls), clean[kind.name])
    assert len(calls) == 2 and "checksum" in json.loads(side.read_text())


# --- builders that fail -------------------------------------------------------------------------


@pytest.mark.fault
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_builder_that_raises_leaves_no_partial_artifact(tmp_path, kind):
    def broken():
        raise RuntimeError("builder failed")

    with pytest.raises(RuntimeError, match="builder failed"):
        if kind.name == "npz":
            store.cached_arrays(tmp_path, "arrays", PARAMS, broken)
        else:
            store.cached_model(kind.path(tmp_path), PARAMS, broken, rebuild_net)
    assert names(tmp_path) == []


@pytest.mark.fault
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_writer_that_raises_mid_write_leaves_no_partial_artifact(tmp_path, kind, monkeypatch):
    def half_then_fail(obj, file, *args, **kwargs):
        with open(file, "wb") if not hasattr(file, "write") else file as fh:
            fh.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    if kind.name == "npz":
        monkeypatch.setattr(np, "savez", lambda fh, **arrays: half_then_fail(None, fh))
    else:
        monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        kind.get(tmp_path)
    assert names(tmp_path) == []


# --- runs killed inside a build -----------------------------------------------------------------


def _killed_build(folder: str, kind_name: str, stage: str) -> None:
    """In a forked child: build the artifact and SIGKILL this process at ``stage``."""
    torch.set_num_threads(1)

    def die(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    def die_half_written(obj, file, *_args, **_kwargs):
        with open(file, "wb") if not hasattr(file, "write") else file as fh:
            fh.write(b"PK\x03\x04" + b"\x00" * 100)
            fh.flush()
        die()

    if stage == "in_builder":
        global build_arrays, train_net
        build_arrays = train_net = die  # this child's copy only
    elif stage == "mid_main_write":
        np.savez = lambda fh, **arrays: die_half_written(None, fh)
        torch.save = die_half_written
    elif stage == "before_sidecar":
        store.write_json = die
    elif stage == "mid_sidecar_write":
        real_atomic_write = store.atomic_write

        def sidecar_dies(path, write):
            if str(path).endswith(".json"):
                return real_atomic_write(path, lambda tmp: (tmp.write_text('{"par'), die()))
            return real_atomic_write(path, write)

        store.atomic_write = sidecar_dies
    Kind(kind_name).get(Path(folder))
    os._exit(3)  # not reached: the build was to be killed


STAGES = {
    # stage: what the killed run leaves besides the lock file
    "in_builder": [],
    "mid_main_write": ["tmp"],
    "before_sidecar": ["main"],
    "mid_sidecar_write": ["main", "tmp"],
}


@pytest.mark.fault
@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_run_killed_inside_a_build_leaves_nothing_loaded_and_rerun_equals_clean(
    tmp_path, kind, stage, clean
):
    child = FORK.Process(target=_killed_build, args=(str(tmp_path), kind.name, stage))
    child.start()
    child.join(20)
    if child.exitcode is None:
        child.kill()
        child.join()
    assert child.exitcode == -signal.SIGKILL
    path = kind.path(tmp_path)
    left = names(tmp_path)
    assert store.lock_path(path).name in left  # killed while holding the lock
    assert (path.name in left) == ("main" in STAGES[stage])
    assert any(n.endswith(".tmp") for n in left) == ("tmp" in STAGES[stage])
    assert store.sidecar_path(path).name not in left  # so nothing will be trusted
    calls: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rerun = kind.get(tmp_path, calls)
    expected = 1 if "main" in STAGES[stage] else 0  # a file without its sidecar is reported
    assert len(corrupt_warnings(caught)) == expected
    assert calls == [os.getpid()]
    assert_equal_content(rerun, clean[kind.name])
    assert names(tmp_path) == artifact_names(path)  # the temporary and the lock are gone


@pytest.mark.fault
def test_next_write_removes_temporaries_of_ended_writers_only(tmp_path):
    child = FORK.Process(target=os._exit, args=(0,))
    child.start()
    child.join()
    dead, live = child.pid, os.getppid()
    (tmp_path / f".a.npz.{dead}.x1y2z3.tmp").write_bytes(b"left by a killed run")
    (tmp_path / f".a.npz.{live}.k9j8h7.tmp").write_bytes(b"being written right now")
    old = tmp_path / ".b.npz.oldstyle.tmp"  # named by older code, without a process id
    old.write_bytes(b"left long ago")
    os.utime(old, (time.time() - 3600,) * 2)
    store.write_json(tmp_path / "other.json", {"k": 1})
    assert names(tmp_path) == [f".a.npz.{live}.k9j8h7.tmp", "other.json"]


# --- two runs at once ---------------------------------------------------------------------------


def _concurrent_get(folder: str, kind_name: str, barrier, log: str) -> None:
    def slow(build):
        def wrapped():
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            time.sleep(0.5)  # long enough for the other process to ask meanwhile
            return build()

        return wrapped

    global build_arrays, train_net
    build_arrays, train_net = slow(build_arrays), slow(train_net)
    torch.set_num_threads(1)
    barrier.wait(10)
    content = Kind(kind_name).get(Path(folder))
    np.savez(Path(folder).parent / f"{kind_name}-{os.getpid()}.out.npz", **content)
    os._exit(0)


@pytest.mark.fault
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_two_concurrent_runs_build_the_artifact_once(tmp_path, kind, clean):
    folder = tmp_path / "store"
    folder.mkdir()
    log = tmp_path / "builds.log"
    barrier = FORK.Barrier(2)
    procs = [
        FORK.Process(target=_concurrent_get, args=(str(folder), kind.name, barrier, str(log)))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
        if p.exitcode is None:
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1  # built by one, waited for and loaded by the other
    for p in procs:
        with np.load(tmp_path / f"{kind.name}-{p.pid}.out.npz") as got:
            assert_equal_content(dict(got), clean[kind.name])
    assert names(folder) == artifact_names(kind.path(folder))


# --- results table ------------------------------------------------------------------------------


@pytest.mark.fault
def test_garbled_metrics_file_is_reported_and_the_table_still_written(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    metrics = paths.metrics_dir("smoke")
    bad = metrics / "11_bad.json"
    bad.write_text('{"wall_s": 3.0, "auc": 0.')  # cut off mid-write by an editor
    (metrics / "12_good.json").write_text(json.dumps({"wall_s": 2.0, "seed": 0, "auc": 0.75}))
    with pytest.warns(UserWarning, match=re.escape(f"{bad}: unreadable metrics")):
        text = results.write_results(
            "smoke", ["11_bad", "12_good"], {"11_bad": (True, 3.0), "12_good": (True, 2.0)}, 5.0
        )
    assert paths.results_table("smoke").read_text() == text
    rows = [line for line in text.splitlines() if line.startswith("| 1")]
    assert rows[0].startswith("| 11_bad | ok |") and rows[0].endswith("| | |")
    assert rows[1].startswith("| 12_good | ok") and rows[1].endswith("| auc | 0.75 |")
    assert len(rows) == 2


# --- notebook kernels ---------------------------------------------------------------------------


def test_notebook_kernel_runs_over_ipc_and_leaves_no_socket_files(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # this test's kernels only
    import nbformat
    import papermill as pm
    from jupyter_core.paths import jupyter_runtime_dir

    from astrogen.kernels import PREFIX, IPCKernelManager

    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
        )
    ]
    nbformat.write(nb, source)
    pm.execute_notebook(
        str(source), str(executed), kernel_name="python3", progress_bar=False,
        kernel_manager_class=IPCKernelManager, cwd=str(tmp_path),
    )  # fmt: skip
    assert nbformat.read(executed, 4).cells[0].outputs[0]["text"] == "ipc\n"
    assert not list(Path(jupyter_runtime_dir()).glob(f"{PREFIX}*"))  # sockets removed
    assert names(tmp_path) == ["in.ipynb", "out.ipynb", "runtime"]


def test_nbval_kernels_run_over_ipc_and_leave_no_socket_files(tmp_path, monkeypatch):
    """The notebooks under ``pytest --nbval-lax`` run in kernels that conftest.py puts on IPC."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    from jupyter_core.paths import jupyter_runtime_dir
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel

    from astrogen.kernels import PREFIX

    kernel = RunningKernel(CURRENT_ENV_KERNEL_NAME)
    try:
        assert kernel.km.transport == "ipc"
        assert Path(kernel.km.ip).name.startswith(PREFIX)
        assert list(Path(jupyter_runtime_dir()).glob(f"{Path(kernel.km.ip).name}-*"))
        kernel.restart()  # nbval restarts kernels between notebooks
        assert kernel.is_alive() and kernel.km.transport == "ipc"
    finally:
        kernel.stop()
    assert not list(Path(jupyter_runtime_dir()).glob(f"{PREFIX}*"))
