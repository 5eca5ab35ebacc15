"""The typed-configuration machinery: overrides, validation, keys, provenance, the frame."""

import json
from dataclasses import dataclass
from typing import Literal

import pytest

from astrogen import config, notebook, paths, provenance
from astrogen.config import Artifact, ConfigError, Target, setting


@dataclass(frozen=True)
class Data:
    n: int = setting(100, minimum=1)
    scale: float = setting(2.0, minimum=0.0)
    source: str | None = None


@dataclass(frozen=True)
class Model:
    n: int = setting(3, minimum=1)
    family: Literal["maf", "nsf"] = "maf"
    grid: tuple[float, ...] = (1e-3, 3e-3)
    flag: bool = False


@dataclass(frozen=True)
class Toy:
    data: Data = Data()
    model: Model = Model()


PROFILES = {"smoke": {"data.n": 10}, "full": {"model.n": 8}}


def test_profiles_and_overrides_apply_in_order():
    assert config.resolve(Toy, "default", PROFILES) == Toy()
    smoke = config.resolve(Toy, "smoke", PROFILES, {"model.n": 5, "scale": 3})
    assert (smoke.data.n, smoke.model.n, smoke.data.scale) == (10, 5, 3.0)
    assert isinstance(smoke.data.scale, float)
    listed = config.resolve(Toy, "default", PROFILES, {"grid": [1e-4], "source": "a.csv"})
    assert listed.model.grid == (1e-4,) and listed.data.source == "a.csv"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.nn": 1}, r"no field 'model.nn'.*Did you mean \['model.n'"),
        ({"n": 1}, r"'n' is ambiguous, it matches \['data.n', 'model.n'\]"),
        ({"data.n": "abc"}, r"data.n \(type int\): expected an integer, got 'abc'"),
        ({"data.n": 2.5}, r"data.n \(type int\): expected an integer, got 2.5"),
        ({"data.n": 0}, r"data.n \(type int\): 0 is out of range, the minimum is 1"),
        ({"data.n": True}, r"expected an integer, got True"),
        ({"model.family": "glow"}, r"'glow' is not one of \['maf', 'nsf'\]"),
        ({"model.flag": 1}, r"expected true or false"),
        ({"model.grid": "abc"}, r"expected a list"),
    ],
)
@pytest.mark.bad_input
def test_bad_overrides_name_the_field_its_type_and_the_valid_names(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(Toy, "default", PROFILES, overrides)


@pytest.mark.bad_input
def test_unknown_name_lists_every_valid_name_and_unknown_profile_is_an_error():
    with pytest.raises(ConfigError) as err:
        config.resolve(Toy, "default", PROFILES, {"epochs": 1})
    assert "Valid names: ['data.n', 'data.scale', 'data.source', 'model.family'" in str(err.value)
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        config.resolve(Toy, "huge", PROFILES)


def test_artifact_key_holds_exactly_what_the_builder_reads():
    cfg = Toy()
    art = Artifact(reads=("data", "model.family"), version=2)
    key = config.artifact_key(cfg, "thing", art, seed=0)
    assert key == {
        "artifact": "thing",
        "version": 2,
        "data": {"n": 100, "scale": 2.0, "source": None},
        "model.family": "maf",
        "seed": 0,
    }
    other = config.resolve(Toy, "default", PROFILES, {"model.n": 7})
    assert config.artifact_key(other, "thing", art, seed=0) == key  # model.n is not read
    bumped = Artifact(reads=art.reads, version=3)
    assert config.artifact_key(cfg, "thing", bumped, seed=0) != key
    with pytest.raises(KeyError, match=r"reads 'model\.width'"):
        config.artifact_key(cfg, "thing", Artifact(reads=("model.width",)))
    assert config.config_hash(cfg) != config.config_hash(other)


def test_targets_pass_and_describe_their_bounds():
    t = Target("x", lower=0.45, upper=0.55)
    assert t.passes(0.5) and not t.passes(0.56) and t.describe() == "[0.45, 0.55]"
    assert Target("y").passes(1e9) and Target("y").describe() == "reported"
    both = config.bounds(lower={"a": 1.0}, upper={"a": 2.0, "b": 3.0}, profiles=("smoke",))
    assert [(t.metric, t.lower, t.upper) for t in both] == [("a", 1.0, 2.0), ("b", None, 3.0)]
    assert config.targets_for(both, "default") == ()


def test_provenance_names_the_commit_dirty_flag_and_versions():
    info = provenance.record(profile="smoke", seed=3)
    assert len(info["commit"]) == 40 and isinstance(info["dirty"], bool)
    assert {"python", "numpy", "torch"} <= set(info["versions"])
    assert info["profile"] == "smoke" and info["seed"] == 3
    assert provenance.short(info).startswith(info["commit"][:7])


def test_finish_records_provenance_and_fails_a_missed_target(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    run = notebook.begin("12_hernquist_flows", "default", 0, {"flow.epochs": 3})
    assert run.cfg.flow.epochs == 3 and run.device == "cpu"
    metrics = {"kl_isotropic_ensemble": 0.01, "kl_beta_half_ensemble": 0.2}
    metrics.update(kl_cored_ensemble=0.03, kl_isotropic_nsf_ensemble=0.02)
    with pytest.raises(notebook.TargetError, match=r"kl_beta_half_ensemble = 0.2, target ≤ 0.05"):
        run.finish(metrics)
    record = json.loads((tmp_path / "metrics" / "default" / "12_hernquist_flows.json").read_text())
    assert record["kl_beta_half_ensemble"] == 0.2  # written before the assertion
    prov = record["provenance"]
    assert prov["config_hash"] == config.config_hash(run.cfg)
    assert prov["overrides"] == {"flow.epochs": 3} and prov["seed"] == 0
    assert {"commit", "dirty", "versions", "profile"} <= set(prov)
    table = run.finish({**metrics, "kl_beta_half_ensemble": 0.01})
    assert list(table["pass"]) == ["yes", "yes", "yes", "reported"]


def test_a_target_metric_the_notebook_did_not_record_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    run = notebook.begin("12_hernquist_flows", "default")
    with pytest.raises(KeyError, match="kl_isotropic_ensemble"):
        run.finish({"something_else": 1.0})


@pytest.mark.bad_input
def test_seed_must_be_a_non_negative_integer():
    with pytest.raises(ConfigError, match="seed"):
        notebook.begin("12_hernquist_flows", "smoke", -1)
