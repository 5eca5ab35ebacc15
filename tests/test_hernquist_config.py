"""Study 1's configuration: profiles resolve, and each field rebuilds exactly what reads it."""

import dataclasses

import pytest
from field_values import another_value

from astrogen import config, store
from astrogen.studies import hernquist as study
from astrogen.studies.hernquist import configuration


@pytest.mark.parametrize("profile", config.PROFILES)
def test_every_profile_resolves_and_defaults_are_valid(profile):
    config.validate_defaults(configuration.Config)
    cfg = config.resolve(configuration.Config, profile, configuration.PROFILES)
    assert study.artifact_keys(cfg, 0)


def keys(cfg, seed=0):
    """Every artifact key as canonical JSON (keys hold arrays, e.g. positions)."""
    return {k: store.canonical_json(v) for k, v in study.artifact_keys(cfg, seed).items()}


def _fields():
    # data.source is a path (tests/test_hernquist_catalogue.py covers the user's catalogue)
    return [
        (n, s) for n, s in config.field_specs(configuration.Config).items() if n != "data.source"
    ]


@pytest.mark.parametrize(("name", "spec"), _fields(), ids=[n for n, _ in _fields()])
def test_each_field_changes_the_keys_of_the_artifacts_that_read_it(name, spec):
    hint, field = spec
    base_cfg = config.resolve(configuration.Config, "smoke", configuration.PROFILES)
    value = another_value(config.flatten(base_cfg)[name], hint, field)
    new_cfg = config.resolve(configuration.Config, "smoke", configuration.PROFILES, {name: value})
    base, new = keys(base_cfg), keys(new_cfg)
    moved = {k for k in base if base[k] != new.get(k)}
    section = name.split(".")[0]
    expected = {
        "data": set(base),  # everything is built from the catalogues
        "flow": {k for k in base if not k.startswith("dataset")},
        "compare": {"members-isotropic-compare", "accelerations-isotropic-compare"},
        "accel": {k for k in base if k.startswith("accelerations")},
    }[section]
    if name in ("data.truth", "data.test_fraction"):
        expected = set()  # read only for the user's catalogue, whose keys are its content
    elif name in ("flow.anisotropic_epochs", "flow.anisotropic_members"):
        expected = {"members-beta_half", "accelerations-beta_half"}
    elif name == "flow.cored_members":
        expected = {"members-cored", "accelerations-cored"}
    elif name == "flow.epochs":
        expected = {k for k in expected if "beta_half" not in k}
    elif name == "flow.family" or name in ("flow.transforms", "flow.members"):
        expected = {k for k in expected if "compare" not in k}
    elif name == "accel.map_grid":
        expected = {"accelerations-map"}
    elif name == "accel.n_positions":
        expected = {k for k in expected if k != "accelerations-map"}
    elif name == "accel.n_velocities" and max(32, value // 4) == max(32, (value - 1) // 4):
        expected = {k for k in expected if k != "accelerations-map"}  # the map uses n / 4 ≥ 32
    assert moved == expected, (name, sorted(moved ^ expected))


def test_members_count_leaves_existing_members_keys_alone():
    small = config.resolve(configuration.Config, "smoke", configuration.PROFILES)
    large = dataclasses.replace(small, flow=dataclasses.replace(small.flow, members=3))
    a = study.artifact_keys(small, 0)["members-isotropic"]["members"]
    b = study.artifact_keys(large, 0)["members-isotropic"]["members"]
    assert b[: len(a)] == a and len(b) == 3


def test_seed_changes_every_key():
    cfg = config.resolve(configuration.Config, "smoke", configuration.PROFILES)
    a, b = keys(cfg, 0), keys(cfg, 1)
    assert all(a[k] != b[k] for k in a)
