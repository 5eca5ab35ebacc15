"""run_all.py: notebook discovery, scoped overrides, failures and the generated tables."""

import json

import papermill as pm
import pytest

import run_all
from astrogen import paths, provenance, results


def test_every_notebook_has_one_parameters_cell_with_profile_seed_and_overrides():
    notebooks = run_all.discover()
    assert notebooks, "no numbered notebooks found"
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, nb.name
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), nb.name
        assert set(pm.inspect_notebook(str(nb))) == {"profile", "seed", "overrides"}, nb.name
        assert "run.conclude(" in "".join(cells[-1]["source"]), (
            f"{nb.name} ends without a conclusion"
        )


def _by_stem(given):
    return {nb.stem: p for nb, p in given.items()}


def test_scoped_overrides_reach_only_their_notebooks():
    nbs = run_all.select(run_all.discover(), ["1"])
    given = _by_stem(run_all.overrides_per_notebook(nbs, {"12.flow.epochs": 5, "seed": 3}))
    assert given["12_hernquist_flows"]["overrides"] == {"flow.epochs": 5}
    assert given["13_hernquist_accelerations"]["overrides"] == {}
    assert all(p["seed"] == 3 for p in given.values())
    given = _by_stem(run_all.overrides_per_notebook(nbs, {"hernquist.flow.epochs": 5}))
    assert all(p["overrides"] == {"flow.epochs": 5} for p in given.values())
    given = _by_stem(run_all.overrides_per_notebook(nbs, {"n_stars": 10_000}))
    assert given["11_hernquist_data"]["overrides"] == {"data.n_stars": 10_000}


@pytest.mark.parametrize(
    ("only", "overrides", "message"),
    [
        (["1"], {"epoch": 3}, r"no such configuration field; valid names: \{'hernquist': \["),
        (["1"], {"family": "nsf"}, r"'family' is ambiguous, it matches \['flow.family', 'compare"),
        (["1", "2"], {"n_test": 5}, r"ambiguous, it matches \['hernquist.data.n_test', 'clusters"),
        (["1"], {"profile": "default"}, "reserved, use --profile"),
        (["1"], {"99.flow.epochs": 1}, "no selected notebook starts with '99'"),
        (["1"], {"clusters.data.n_train": 1}, "not among the selected notebooks"),
    ],
)
@pytest.mark.bad_input
def test_bad_override_names_are_errors_before_anything_runs(only, overrides, message):
    nbs = run_all.select(run_all.discover(), only)
    with pytest.raises(SystemExit, match=message):
        run_all.overrides_per_notebook(nbs, overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"flow.epochs": 0}, r"flow.epochs \(type int\): 0 is out of range, the minimum is 1"),
        ({"flow.epochs": "abc"}, r"flow.epochs \(type int\): expected an integer"),
        ({"hidden": 2.5}, r"flow.hidden \(type int\): expected an integer, got 2.5"),
        ({"n_stars": -5}, r"data.n_stars \(type int\): -5 is out of range"),
        ({"n_stars": 0}, r"data.n_stars \(type int\): 0 is out of range"),
        ({"flow.epochs": -1}, r"flow.epochs \(type int\): -1 is out of range, the minimum is 1"),
        ({"flow.members": 0}, r"flow.members \(type int\): 0 is out of range, the minimum is 1"),
        ({"flow.batch_size": 0}, r"flow.batch_size \(type int\): 0 is out of range"),
        ({"seed": -1}, r"seed=-1: expected a non-negative integer"),
    ],
)
@pytest.mark.bad_input
def test_bad_values_are_errors_before_anything_runs(override, message):
    nbs = run_all.select(run_all.discover(), ["1"])
    given = run_all.overrides_per_notebook(nbs, override)
    with pytest.raises(SystemExit, match=message):
        run_all.validate(nbs, "smoke", given)


def test_override_parsing_and_selection():
    assert run_all.parse_overrides(["flow.epochs=5", "family=nsf", "lr=1e-3"]) == {
        "flow.epochs": 5,
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


# --keep-going, the job graph and seed sweeps: tests/test_workflow.py


def _metrics(path, stem, commit, **values):
    path.mkdir(parents=True, exist_ok=True)
    record = {**values, "wall_s": 31.0, "seed": 0, "device": "cpu"}
    record["provenance"] = {"commit": commit, "dirty": False}
    (path / f"{stem}.json").write_text(json.dumps(record))


def test_results_table_marks_commits_and_keeps_rows_whose_metrics_are_not_here(
    tmp_path, monkeypatch
):
    """A fresh clone has figures/RESULTS.md but no data/metrics: ``--only`` must not drop the
    other studies' rows; a notebook run now replaces its own rows; each row names its commit."""
    table = tmp_path / "RESULTS.md"
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    monkeypatch.setattr(paths, "results_table", lambda profile=None: table)
    first, second, third, fourth = (nb.stem for nb in run_all.discover()[:4])
    table.write_text(
        "# Results\n\n- profile: `default`\n\n"
        + results.TABLE_HEADER
        + "\n|---|---|---|---|---|---|---|---|\n"
        f"| {first} | ok | 1234567 | 12 | cpu | 0 | kl | 0.01 |\n| | | | | | | nll | 6.5 |\n"
        f"| {second} | ok | 1234567 | 30 | cpu | 0 | old_metric | 1 |\n"
        f"| {third} | FAILED | | 3 | | | | |\n"
    )
    metrics = tmp_path / "data" / "metrics" / "default"
    head = provenance.commit()["commit"]
    _metrics(metrics, second, head, new_metric=2.0)
    _metrics(metrics, fourth, "f" * 40, other=1.0)
    stems = [nb.stem for nb in run_all.discover()]
    text = results.write_results("default", stems, {second: (True, 31.0)}, 31.0)
    assert f"| {first} | earlier run | 1234567 | 12 | cpu | 0 | kl | 0.01 |" in text
    assert "| | | | | | | nll | 6.5 |" in text
    assert "old_metric" not in text and f"| {second} | ok | {head[:7]}" in text
    assert f"| {third} | FAILED (earlier run) |" in text
    assert f"| {fourth} | earlier run | fffffff |" in text
    # another profile's table (default and full share figures/RESULTS.md) lends no rows
    assert first not in results.write_results("full", stems, {}, 0.0)


@pytest.mark.fault
def test_unreadable_metrics_are_a_warning_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    path = paths.metrics_dir("default") / "12_hernquist_flows.json"
    path.write_text("{garbled")
    with pytest.warns(UserWarning, match=r"12_hernquist_flows.json: unreadable metrics"):
        assert results.load_metrics("default", "12_hernquist_flows") == {}


def test_readme_table_is_regenerated_between_its_markers(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    readme = tmp_path / "README.md"
    kept = "| galforge | C2ST AUC (`c2st_auc_best`) | ≤ 0.6 | 0.595 | pass | 56 min |"
    readme.write_text(
        f"intro\n{results.README_BEGIN}\n| old |\n{kept}\n{results.README_END}\nrest\n"
    )
    head = provenance.commit()["commit"]
    metrics = tmp_path / "data" / "metrics" / "default"
    _metrics(metrics, "13_hernquist_accelerations", head, median_err_isotropic=0.016)
    assert results.update_readme(readme)
    assert "| ≤ 0.03 | 0.016 | pass |  |" in readme.read_text()  # study time: not all runs here
    _metrics(metrics, "11_hernquist_data", head)
    _metrics(metrics, "12_hernquist_flows", head)
    assert results.update_readme(readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{results.README_END}\nrest\n")
    assert (
        "| hernquist | median radial acceleration error, isotropic (`median_err_isotropic`)" in text
    )
    assert "| ≤ 0.03 | 0.016 | pass | 2 min |" in text
    assert kept in text and "| old |" not in text
