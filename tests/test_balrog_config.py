"""Study-3 configuration: every profile resolves, each field keys the artifacts that read it."""

import dataclasses

import pytest
from field_values import another_value

from astrogen import config
from astrogen.config import ConfigError
from astrogen.studies import balrog as study
from astrogen.studies.balrog.configuration import ARTIFACTS, EVALUATION_ONLY, PROFILES, Config

SEED = 0


def test_every_profile_resolves_and_the_defaults_are_valid():
    config.validate_defaults(Config)
    for profile in config.PROFILES:
        cfg = config.resolve(Config, profile, PROFILES)
        assert set(study.artifact_keys(cfg, SEED)) == set(ARTIFACTS)
    assert config.resolve(Config, "default", PROFILES) == Config()


def _changed(name: str, value, hint, tmp_path):
    """Another valid value of field ``name`` (see the module docstring's rules)."""
    if name == "data.source":
        path = tmp_path / "catalogue.csv"
        path.write_text("a,b\n1,2\n")
        return str(path)
    if name == "data.columns":
        return {"deep_id_column": "ID", "position_columns": ["RA", "DEC"]}
    return another_value(value, hint, config.field_specs(Config)[name][1])


def _reads(artifact: config.Artifact, name: str) -> bool:
    section = name.split(".", 1)[0]
    return name in artifact.reads or section in artifact.reads


def test_each_field_changes_exactly_the_keys_of_the_artifacts_that_read_it(tmp_path):
    base_cfg = Config()
    base = study.artifact_keys(base_cfg, SEED)
    specs = config.field_specs(Config)
    for name, value in config.flatten(base_cfg).items():
        hint, field = specs[name]
        new_value = config.coerce(name, hint, _changed(name, value, hint, tmp_path), field)
        cfg = config.resolve(Config, "default", PROFILES, {name: new_value})
        assert config.flatten(cfg)[name] == new_value != value
        keys = study.artifact_keys(cfg, SEED)
        changed = {a for a in base.keys() & keys.keys() if keys[a] != base[a]}
        readers = {a for a, artifact in ARTIFACTS.items() if _reads(artifact, name)}
        if name in EVALUATION_ONLY:
            assert not changed and not readers, f"{name} is evaluation-only but keys {changed}"
            continue
        if name == "data.source":  # a catalogue trains the models; the simulator builds nothing
            assert set(keys) == set(study.MODEL_ARTIFACTS) and changed == set(study.MODEL_ARTIFACTS)
            continue
        assert changed, f"{name} changes no artifact key: list it in EVALUATION_ONLY"
        assert changed == readers & keys.keys(), f"{name}: keys {changed}, readers {readers}"
    assert set(EVALUATION_ONLY) <= set(specs)


def test_the_seed_and_the_builder_version_change_every_key():
    base = study.artifact_keys(Config(), SEED)
    other = study.artifact_keys(Config(), SEED + 1)
    assert all(other[a] != base[a] for a in base)
    bumped = dataclasses.replace(ARTIFACTS["cwgan_gp"], version=ARTIFACTS["cwgan_gp"].version + 1)
    key = config.artifact_key(Config(), "cwgan_gp", bumped, seed=SEED)
    assert key != base["cwgan_gp"]


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"gan.widht": 32}, ["gan.widht", "gan.width"]),  # unknown, with the close match
        ({"epochs": 3}, ["ambiguous", "flow.epochs", "detection.epochs"]),
        ({"batch_size": 3}, ["ambiguous", "gan.batch_size", "flow.batch_size", "data.batch_size"]),
        ({"gan.width": "wide"}, ["gan.width", "int", "'wide'"]),
        ({"gan.lr": True}, ["gan.lr", "float"]),
        ({"fixed.mag_range": 22.0}, ["fixed.mag_range", "expected a list"]),
        ({"gan.ema": 1.5}, ["gan.ema", "maximum"]),
        ({"data.source": 3}, ["data.source"]),
    ],
)
def test_bad_overrides_name_the_field(overrides, fragments):
    with pytest.raises(ConfigError) as err:
        config.resolve(Config, "smoke", PROFILES, overrides)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_unscoped_names_that_one_section_has_resolve():
    cfg = config.resolve(Config, "smoke", PROFILES, {"noise_dim": 4, "min_bin_count": 7})
    assert cfg.gan.noise_dim == 4 and cfg.evaluation.min_bin_count == 7
    assert cfg.gan.width == PROFILES["smoke"]["gan.width"]  # the profile still applies
