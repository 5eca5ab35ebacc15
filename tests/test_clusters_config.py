"""Study 2's configuration: profiles resolve, each field rebuilds exactly what reads it, bad
overrides are errors that name the field."""

import types
import typing

import numpy as np
import pytest
from field_values import another_value

from astrogen import config, notebook
from astrogen.studies import clusters as study
from astrogen.studies.clusters import configuration

CFG = configuration.Config
FIELDS = list(config.field_specs(CFG).items())


def _table(directory, rows=20):
    directory.mkdir(exist_ok=True)
    x = "\n".join(f"{i},{i / 10}" for i in range(rows))
    y = "\n".join(f"{i},{14 + i / 100}" for i in range(rows))
    (directory / "X.csv").write_text("id,lx\n" + x + "\n")
    (directory / "Y.csv").write_text("id,mass\n" + y + "\n")
    return directory


def changed(name, value, hint, tmp_path):
    """A different valid value of field ``name``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is not None:
            return None
        option = next(a for a in typing.get_args(hint) if a is not type(None))
        if name == "data.source":
            return str(_table(tmp_path / "table"))
        return ("lx",) if typing.get_origin(option) is tuple else "x.npy"
    return another_value(value, hint, config.field_specs(CFG)[name][1])


def _reads(artifact, name):
    return name in artifact.reads or name.split(".")[0] in artifact.reads


@pytest.mark.parametrize("profile", config.PROFILES)
def test_every_profile_resolves_and_defaults_are_valid(profile):
    config.validate_defaults(CFG)
    cfg = config.resolve(CFG, profile, configuration.PROFILES)
    keys = study.artifact_keys(cfg, 0)
    assert {k["artifact"] for k in keys.values()} == set(configuration.ARTIFACTS)
    for nb_targets in configuration.TARGETS.values():
        assert all(t.why for t in nb_targets)


def test_evaluation_only_names_real_fields():
    assert set(configuration.EVALUATION_ONLY) <= set(config.field_specs(CFG))


@pytest.mark.parametrize(("name", "spec"), FIELDS, ids=[n for n, _ in FIELDS])
def test_each_field_changes_the_keys_of_the_artifacts_that_read_it(name, spec, tmp_path):
    hint, field = spec
    base_cfg = config.resolve(CFG, "smoke", configuration.PROFILES)
    value = changed(name, config.flatten(base_cfg)[name], hint, tmp_path)
    meta = field.metadata
    if isinstance(value, float) and meta.get("maximum") is not None and value > meta["maximum"]:
        value = config.flatten(base_cfg)[name] / 1.5
    new_cfg = config.resolve(CFG, "smoke", configuration.PROFILES, {name: value})
    base, new = study.artifact_keys(base_cfg, 0), study.artifact_keys(new_cfg, 0)
    moved = {k for k in base if base[k] != new[k]}
    expected = {k for k in base if _reads(configuration.ARTIFACTS[base[k]["artifact"]], name)}
    assert moved == expected, (name, sorted(moved ^ expected))
    if name in configuration.EVALUATION_ONLY:
        assert not moved, f"{name} is listed as evaluation-only but rebuilds {sorted(moved)}"
    else:
        assert moved, f"{name} changes no artifact key: list it in EVALUATION_ONLY or key it"


def test_seed_changes_every_key():
    cfg = config.resolve(CFG, "smoke", configuration.PROFILES)
    a, b = study.artifact_keys(cfg, 0), study.artifact_keys(cfg, 1)
    assert all(a[k] != b[k] for k in a)


def test_a_real_tables_content_is_in_the_keys_of_what_is_built_from_it(tmp_path):
    table = _table(tmp_path / "table")
    overrides = {"data.source": str(table), "data.x_columns": ["lx"], "data.y_columns": ["mass"]}
    cfg = config.resolve(CFG, "smoke", configuration.PROFILES, overrides)
    before = study.artifact_keys(cfg, 0)
    d = study.dataset(cfg, 0)
    assert d["x"].shape == (16, 1) and d["test_theta"].shape == (4, 1)
    np.testing.assert_allclose(np.sort(np.concatenate([d["x"], d["test_x"]])[:, 0]) * 10, range(20))
    (table / "Y.csv").write_text((table / "Y.csv").read_text().replace("14.0", "14.5", 1))
    after = study.artifact_keys(cfg, 0)
    moved = {k for k in before if before[k] != after[k]}
    assert moved == {"dataset", "cinn_scalars", "mlp"} | {k for k in before if "drop" in k}
    fingerprint = after["dataset"]["source"]
    assert set(fingerprint) == {"X.csv", "Y.csv"}
    assert fingerprint["Y.csv"]["size"] == (table / "Y.csv").stat().st_size


def test_unknown_ambiguous_and_mistyped_overrides_name_the_field():
    with pytest.raises(config.ConfigError, match="blokcs"):
        notebook.resolve("22_clusters_posteriors", "smoke", {"cinn.blokcs": 4})
    with pytest.raises(config.ConfigError, match=r"'epochs' is ambiguous.*training\.epochs"):
        notebook.resolve("22_clusters_posteriors", "smoke", {"epochs": 4})
    with pytest.raises(config.ConfigError, match=r"cinn\.blocks \(type int\)"):
        notebook.resolve("22_clusters_posteriors", "smoke", {"cinn.blocks": "twelve"})
    with pytest.raises(config.ConfigError, match=r"data\.x_columns"):
        notebook.resolve("22_clusters_posteriors", "smoke", {"data.x_columns": "lx"})
    with pytest.raises(config.ConfigError, match=r"maps\.train_fraction.*maximum"):
        notebook.resolve("24_clusters_maps", "smoke", {"maps.train_fraction": 1.5})
    cfg = notebook.resolve("24_clusters_maps", "smoke", {"walkers": 20, "mlp.hidden": 16})
    assert cfg.reference.walkers == 20 and cfg.mlp.hidden == 16
