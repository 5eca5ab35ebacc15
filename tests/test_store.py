"""Store: atomic writes, cache hits, provenance, refusal of mismatched checkpoints."""

import json
import os
import time

import numpy as np
import pytest
import torch

from astrogen import store


@pytest.mark.fault
def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.npz"
    store.save_npz(target, {"x": np.arange(3)})

    def broken(tmp):
        tmp.write_bytes(b"half a file")
        raise KeyboardInterrupt  # a run killed mid-write

    with pytest.raises(KeyboardInterrupt):
        store.atomic_write(target, broken)
    np.testing.assert_array_equal(store.load_npz(target)["x"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary left behind


def test_cached_arrays_builds_once_and_records_provenance(tmp_path, monkeypatch):
    monkeypatch.delenv("ASTROGEN_FORCE", raising=False)
    calls = []

    def build():
        calls.append(1)
        return {"x": np.ones(4)}

    params = {"n": 4, "seed": 1}
    first = store.cached_arrays(tmp_path, "thing", params, build)
    second = store.cached_arrays(tmp_path, "thing", params, build)
    assert len(calls) == 1 and np.array_equal(first["x"], second["x"])
    store.cached_arrays(tmp_path, "thing", {"n": 4, "seed": 2}, build)
    assert len(calls) == 2  # other parameters, other artifact
    path = store.artifact_path(tmp_path, "thing", params, ".npz")
    sidecar = json.loads(store.sidecar_path(path).read_text())
    assert sidecar["params"]["n"] == 4 and "torch" in sidecar["provenance"]["versions"]
    assert sidecar["checksum"] == store.file_checksum(path)  # size and SHA-256 of the file
    monkeypatch.setenv("ASTROGEN_FORCE", "1")
    monkeypatch.delenv("ASTROGEN_RUN_START", raising=False)
    store.cached_arrays(tmp_path, "thing", params, build)
    assert len(calls) == 3


def test_forced_run_rebuilds_each_artifact_once(tmp_path, monkeypatch):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.ones(2)}

    monkeypatch.delenv("ASTROGEN_FORCE", raising=False)
    path = store.artifact_path(tmp_path, "a", {"k": 1}, ".npz")
    store.cached_arrays(tmp_path, "a", {"k": 1}, build)
    old = time.time() - 100
    os.utime(store.sidecar_path(path), (old, old))  # built by an earlier run
    monkeypatch.setenv("ASTROGEN_FORCE", "1")
    monkeypatch.setenv("ASTROGEN_RUN_START", repr(time.time() - 10))  # run started 10 s ago
    store.cached_arrays(tmp_path, "a", {"k": 1}, build)  # stale: rebuilt
    store.cached_arrays(tmp_path, "a", {"k": 1}, build)  # rebuilt in this run: reused
    assert len(calls) == 2


@pytest.mark.fault
def test_artifact_without_sidecar_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.delenv("ASTROGEN_FORCE", raising=False)
    params = {"k": 1}
    path = store.artifact_path(tmp_path, "arr", params, ".npz")
    store.save_npz(path, {"x": np.zeros(2)})  # main file but no sidecar: an interrupted run
    with pytest.warns(store.CorruptArtifactWarning, match="sidecar .* is missing"):
        out = store.cached_arrays(tmp_path, "arr", params, lambda: {"x": np.ones(2)})
    assert out["x"].sum() == 2


@pytest.mark.fault
def test_checkpoint_with_other_parameters_is_refused(tmp_path):
    net = torch.nn.Linear(2, 3)
    path = tmp_path / "net.pt"
    store.save_state(path, net, {"lr": 1e-3}, {"in": 2, "out": 3})

    def rebuild(cfg):
        return torch.nn.Linear(cfg["in"], cfg["out"])

    loaded, _ = store.load_state(path, rebuild, {"lr": 1e-3})
    torch.testing.assert_close(loaded.weight, net.weight)
    with pytest.raises(store.ConfigMismatchError, match="lr"):
        store.load_state(path, rebuild, {"lr": 2e-3})


def test_param_hash_is_order_independent():
    assert store.param_hash({"a": 1, "b": [1, 2]}) == store.param_hash({"b": [1, 2], "a": 1})
    assert store.param_hash({"a": 1}) != store.param_hash({"a": 2})


def test_random_stream_after_cached_model_does_not_depend_on_the_cache(tmp_path):
    path = tmp_path / "net.pt"

    def train():
        net = torch.nn.Linear(2, 3)  # consumes the global RNG
        torch.randn(100)
        return net, {"in": 2, "out": 3}, {}

    def rebuild(cfg):
        return torch.nn.Linear(cfg["in"], cfg["out"])

    draws = []
    for _ in range(2):  # first call trains, second loads
        torch.manual_seed(0)
        store.cached_model(path, {"lr": 1e-3}, train, rebuild)
        draws.append(torch.randn(5))
    torch.testing.assert_close(draws[0], draws[1])


def test_content_fingerprint_follows_the_bytes_of_a_file_and_of_a_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"abc")
    (folder / "notes.txt").write_bytes(b"ignored")
    one = store.content_fingerprint(folder / "a.png")
    assert one["size"] == 3 and len(one["sha256"]) == 64
    whole = store.content_fingerprint(folder)
    images = store.content_fingerprint(folder, suffixes=(".png",))
    assert whole["files"] == 2 and images["files"] == 1 and whole != images
    (folder / "a.png").write_bytes(b"abd")  # same size, other bytes
    assert store.content_fingerprint(folder / "a.png")["sha256"] != one["sha256"]
    assert store.content_fingerprint(folder, suffixes=(".png",)) != images
    (folder / "b.png").write_bytes(b"")
    assert store.content_fingerprint(folder, suffixes=(".png",))["files"] == 2
