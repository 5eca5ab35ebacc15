"""Study 5's configuration: profiles resolve, each field rebuilds exactly what reads it, and bad
overrides are errors that name the field."""

import pytest
from field_values import another_value

from astrogen import config
from astrogen.config import ConfigError
from astrogen.studies import galforge as study
from astrogen.studies.galforge import configuration
from astrogen.studies.galforge.configuration import ARTIFACTS, EVALUATION_ONLY, PROFILES, Config

SPECS = config.field_specs(Config)


@pytest.fixture
def population(tmp_path):
    """A stand-in folder of real galaxies: only its bytes matter to a key."""
    (tmp_path / "galaxies").mkdir()
    (tmp_path / "galaxies" / "a.npz").write_bytes(b"stars of galaxy a")
    return tmp_path


def changed(name: str, value, hint, population):
    """A different valid value of a field."""
    if name == "data.source":
        return str(population) if value is None else None
    return another_value(value, hint, config.field_specs(Config)[name][1])


def smoke(**overrides):
    return config.resolve(Config, "smoke", PROFILES, overrides)


@pytest.mark.parametrize("profile", config.PROFILES)
def test_every_profile_resolves_and_defaults_are_valid(profile):
    config.validate_defaults(Config)
    cfg = config.resolve(Config, profile, PROFILES)
    keys = study.artifact_keys(cfg, 0)
    assert {k["artifact"] for k in keys.values()} == set(ARTIFACTS)


def test_profiles_are_the_differences_from_the_defaults():
    defaults = config.flatten(Config())
    for profile, overrides in PROFILES.items():
        same = [k for k, v in overrides.items() if config.coerce(k, SPECS[k][0], v) == defaults[k]]
        assert not same, (profile, same)


def reads(artifact: str, name: str) -> bool:
    section = name.split(".")[0]
    return any(item in (section, name) for item in ARTIFACTS[artifact].reads)


@pytest.mark.parametrize("name", list(SPECS))
def test_each_field_changes_exactly_the_keys_of_the_artifacts_that_read_it(name, population):
    hint, _ = SPECS[name]
    base_cfg = smoke()
    new_cfg = smoke(**{name: changed(name, config.flatten(base_cfg)[name], hint, population)})
    base, new = study.artifact_keys(base_cfg, 0), study.artifact_keys(new_cfg, 0)
    moved = {k for k in base.keys() & new.keys() if base[k] != new[k]}
    # an artifact that does not read the field keeps its key
    wrong = {k for k in moved if not reads(base[k]["artifact"], name)}
    assert not wrong, (name, sorted(wrong))
    # and one that reads it gets a new one
    kept = {k for k in base.keys() & new.keys() if base[k] == new[k]}
    missed = {k for k in kept if reads(base[k]["artifact"], name)}
    assert not missed, (name, sorted(missed))
    if name in EVALUATION_ONLY:
        assert base == new, name
    else:  # a new key, or artifacts added or dropped (replicates, learning-rate trials)
        assert moved or base.keys() != new.keys(), f"{name} changes no artifact key"


def test_evaluation_only_fields_exist_and_are_read_by_no_artifact():
    for name in EVALUATION_ONLY:
        assert name in SPECS
        assert not any(reads(a, name) for a in ARTIFACTS), name


def test_a_population_folder_keys_every_artifact_by_its_content(population):
    cfg = smoke(**{"data.source": str(population)})
    before = study.artifact_keys(cfg, 0)
    assert all(k["source"]["files"] == 1 for k in before.values())
    (population / "galaxies" / "a.npz").write_bytes(b"other stars of galaxy a")
    after = study.artifact_keys(cfg, 0)
    assert all(before[k] != after[k] for k in before)


def test_seed_changes_every_key():
    cfg = smoke()
    a, b = study.artifact_keys(cfg, 0), study.artifact_keys(cfg, 1)
    assert all(a[k] != b.get(k) for k in a)


def test_ablation_replicates_use_the_first_seeds_learning_rate():
    keys = study.artifact_keys(smoke(**{"ablation.seeds": 2}), 0)
    assert keys["flow/maf/parameters/seed=1"]["tuned_on"] == 0
    assert keys["flow/maf/latent/seed=0"] == study.flow_key(smoke(), 0, "maf")


def test_unknown_ambiguous_and_mistyped_overrides_name_the_field():
    with pytest.raises(ConfigError, match=r"no field 'flow\.epoch'.*flow\.epochs"):
        smoke(**{"flow.epoch": 3})
    with pytest.raises(ConfigError, match=r"'epochs' is ambiguous.*autoencoder\.epochs"):
        smoke(epochs=3)
    with pytest.raises(ConfigError, match=r"flow\.hidden \(type int\).*integer"):
        smoke(hidden="wide")
    with pytest.raises(ConfigError, match=r"tuning\.lr_grid.*expected a list"):
        smoke(**{"tuning.lr_grid": 1e-3})
    with pytest.raises(ConfigError, match=r"data\.n_galaxies.*minimum"):
        smoke(n_galaxies=2)
    assert smoke(stars_max=3000).data.stars_max == 3000  # unscoped and unique: accepted


def test_targets_name_their_notebooks_and_say_why():
    for notebook, targets in configuration.TARGETS.items():
        assert notebook.removesuffix("_folder") in {
            "51_galforge_galaxies", "52_galforge_autoencoder", "53_galforge_flows",
            "54_galforge_evaluation",
        }  # fmt: skip
        assert all(t.why and set(t.profiles) <= set(config.PROFILES) for t in targets), notebook
