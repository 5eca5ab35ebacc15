"""Study 4's configuration: profiles resolve, each field changes exactly the keys of the
artifacts that read it, a folder's bytes are in the keys, bad overrides name the field."""

import pytest
from field_values import another_value

from astrogen import config, store
from astrogen.studies import anomaly as study
from astrogen.studies.anomaly import configuration

CFG = configuration.Config
FIELDS = [(n, s) for n, s in config.field_specs(CFG).items() if n != "data.source"]


def keys(cfg):
    """The key of every artifact, through the study's own key function."""
    extras = {"suite": {"suite": "compact"}, "features": {"set": "sky_test", "of": {"k": 1}}}
    return {
        name: store.canonical_json(study.key(cfg, name, 0, **extras.get(name, {})))
        for name in configuration.ARTIFACTS
    }


def _reads(artifact, name):
    return name in artifact.reads or name.split(".")[0] in artifact.reads


@pytest.mark.parametrize("profile", config.PROFILES)
def test_every_profile_resolves_and_every_target_says_why(profile):
    config.validate_defaults(CFG)
    config.resolve(CFG, profile, configuration.PROFILES)
    for targets in configuration.TARGETS.values():
        assert all(t.why for t in targets)


@pytest.mark.parametrize(("name", "spec"), FIELDS, ids=[n for n, _ in FIELDS])
def test_each_field_changes_exactly_the_keys_of_the_artifacts_that_read_it(name, spec):
    hint, field = spec
    base_cfg = config.resolve(CFG, "smoke", configuration.PROFILES)
    value = another_value(config.flatten(base_cfg)[name], hint, field)
    new_cfg = config.resolve(CFG, "smoke", configuration.PROFILES, {name: value})
    base, new = keys(base_cfg), keys(new_cfg)
    moved = {k for k in base if base[k] != new[k]}
    expected = {k for k, a in configuration.ARTIFACTS.items() if _reads(a, name)}
    assert moved == expected
    if name in configuration.EVALUATION_ONLY:
        assert not moved
    else:
        assert moved, f"{name} changes no artifact: list it in EVALUATION_ONLY or in a key"


def test_a_folder_source_puts_its_bytes_in_the_keys(tmp_path):
    folder = tmp_path / "observed"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png bytes")
    cfg = config.resolve(CFG, "smoke", configuration.PROFILES, {"data.source": str(tmp_path)})
    before = keys(cfg)
    (folder / "a.png").write_bytes(b"other bytes")
    after = keys(cfg)
    assert {k for k in before if before[k] != after[k]} >= {"sky", "ganomaly", "feature_flow"}


def test_bad_overrides_name_the_field():
    with pytest.raises(config.ConfigError, match=r"no field 'model\.epoch'"):
        config.resolve(CFG, "smoke", configuration.PROFILES, {"model.epoch": 1})
    with pytest.raises(config.ConfigError, match=r"model.epochs \(type int\): expected an integer"):
        config.resolve(CFG, "smoke", configuration.PROFILES, {"model.epochs": "ten"})
