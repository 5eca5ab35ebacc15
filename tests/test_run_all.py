"""run_all.py: notebook discovery, parameter validation and the notebooks' parameter cells."""

import json

import papermill as pm
import pytest

import run_all
from astrogen import profiles


def test_every_notebook_has_one_parameters_cell_matching_its_profile_keys():
    notebooks = run_all.discover()
    assert notebooks, "no numbered notebooks found"
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, nb.name
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), nb.name
        names = set(pm.inspect_notebook(str(nb)))
        expected = {"profile", "seed", *profiles.parameter_names(nb.stem)}
        assert names == expected | set(profiles.DATA_PARAMETERS.get(nb.stem, ())), nb.name


def test_overrides_go_to_the_notebooks_that_declare_them():
    notebooks = run_all.select(run_all.discover(), ["1"])
    given = run_all.overrides_per_notebook(notebooks, {"seed": 3, "epochs": 5})
    assert all(given[nb]["seed"] == 3 for nb in notebooks)
    assert "epochs" not in given[notebooks[0]] and given[notebooks[1]]["epochs"] == 5
    with pytest.raises(SystemExit, match=r"unknown parameter\(s\) \['epoch'\]; valid parameters: "):
        run_all.overrides_per_notebook(notebooks, {"epoch": 3})


def test_override_parsing_and_selection():
    assert run_all.parse_overrides(["epochs=5", "family=nsf", "lr=1e-3"]) == {
        "epochs": 5,
        "family": "nsf",
        "lr": 1e-3,
    }
    with pytest.raises(SystemExit):
        run_all.parse_overrides(["epochs"])
    all_nbs = run_all.discover()
    assert run_all.select(all_nbs, ["1"]) == run_all.select(all_nbs, ["hernquist"])
    assert [p.stem for p in run_all.select(all_nbs, ["12"])] == ["12_hernquist_flows"]
    with pytest.raises(SystemExit, match="no notebook matches"):
        run_all.select(all_nbs, ["9"])


def test_profiles_resolve_overrides_and_reject_unknown_names():
    p = profiles.resolve("12_hernquist_flows", "smoke", epochs=7, lr=None)
    assert p["epochs"] == 7 and p["lr"] == profiles.resolve("12_hernquist_flows", "smoke")["lr"]
    with pytest.raises(KeyError, match="unknown parameters"):
        profiles.resolve("12_hernquist_flows", "smoke", epoch=7)
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.current_profile("huge")


def test_results_table_keeps_rows_of_notebooks_whose_metrics_are_not_here(tmp_path, monkeypatch):
    """A fresh clone has figures/RESULTS.md but no data/metrics: ``--only`` must not drop the
    other studies' rows, and a notebook run now replaces its own rows."""
    table = tmp_path / "RESULTS.md"
    monkeypatch.setattr(run_all, "DATA", tmp_path / "data")
    monkeypatch.setattr(run_all.paths, "results_table", lambda profile=None: table)
    first, second, third = run_all.discover()[:3]
    old_table = (
        "# Results\n\n- profile: `default`\n\n"
        "| notebook | status | wall time [s] | device | seed | metric | value |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {first.stem} | ok | 12 | cpu | 0 | kl | 0.01 |\n| | | | | | nll | 6.5 |\n"
        f"| {second.stem} | ok | 30 | cpu | 0 | old_metric | 1 |\n"
        f"| {third.stem} | FAILED | 3 | | | | |\n"
    )
    table.write_text(old_table)
    metrics = tmp_path / "data" / "metrics" / "default"
    metrics.mkdir(parents=True)
    (metrics / f"{second.stem}.json").write_text(json.dumps({"wall_s": 31.0, "new_metric": 2.0}))
    text = run_all.write_results("default", [(second, True, 31.0)], 31.0)
    assert f"| {first.stem} | earlier run | 12 | cpu | 0 | kl | 0.01 |\n| | | | | | nll | 6.5 |" in text
    assert "old_metric" not in text and f"| {second.stem} | ok | 31 |" in text
    assert f"| {third.stem} | FAILED (earlier run) | 3 |" in text
    assert table.read_text() == text
    # another profile's table (default and full share figures/RESULTS.md) lends no rows
    table.write_text(old_table)
    text = run_all.write_results("full", [], 0.0)
    assert first.stem not in text and third.stem not in text
