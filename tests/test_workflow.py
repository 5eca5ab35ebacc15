"""The Snakemake workflow behind run_all.py: job graph, dry run, --keep-going, resources, sweeps."""

import math
import re

import nbformat
import pytest

import run_all
from astrogen import paths, provenance, resources, results, threads


def test_every_notebook_has_declared_resources():
    stems = [nb.stem for nb in run_all.discover()]
    assert set(resources.RESOURCES) == set(stems)
    for stem in stems:
        res = resources.resources(stem)
        assert res.threads >= 1 and res.mem_mb >= 500 and res.minutes >= 1
        smoke, full = res.for_profile("smoke"), res.for_profile("full")
        assert smoke["runtime"] <= res.minutes <= full["runtime"]
        assert ("gpu" in full) == (res.gpus > 0) and "gpu" not in smoke
    with pytest.raises(KeyError, match="99_none: no resources declared"):
        resources.resources("99_none")


def test_job_graph_has_every_notebook_once_in_study_order():
    notebooks = run_all.discover()
    jobs = run_all.plan(notebooks)
    assert [j.notebook for j in jobs] == [nb.stem for nb in notebooks]
    for job in jobs:
        assert all(a[0] == job.notebook[0] and a < job.notebook for a in job.after)
        same_study = [nb.stem for nb in notebooks if nb.stem[0] == job.notebook[0]]
        assert list(job.after) == same_study[: same_study.index(job.notebook)]
    # --only 12: no job waits for a notebook that is not selected
    only = run_all.plan(run_all.select(notebooks, ["12", "13"]))
    assert [(j.notebook, j.after) for j in only] == [
        ("12_hernquist_flows", ()),
        ("13_hernquist_accelerations", ("12_hernquist_flows",)),
    ]


def test_seed_sweep_fans_every_notebook_out_per_seed():
    notebooks = run_all.select(run_all.discover(), ["1"])
    assert run_all.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert run_all.parse_seeds("0,2,5") == [0, 2, 5]
    assert run_all.parse_seeds("0-2,7,1") == [0, 1, 2, 7]
    for bad in ("a", "3-1", "0-", ""):
        with pytest.raises(SystemExit, match="--seeds"):
            run_all.parse_seeds(bad)
    jobs = run_all.plan(notebooks, [0, 2, 5])
    assert len(jobs) == 9 and len(set(jobs)) == 9
    assert {(j.notebook, j.seed) for j in jobs} == {
        (nb.stem, k) for nb in notebooks for k in (0, 2, 5)
    }
    assert all(run_all.record_path(paths.DATA, j).parent.name == f"seed{j.seed}" for j in jobs)


def test_dry_run_prints_the_job_graph_and_snakemake_agrees(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    argv = ["--profile", "smoke", "--only", "1", "--seeds", "0-2", "--dry-run"]
    assert run_all.main(argv) == 0
    out = capsys.readouterr().out
    assert "job graph [smoke]: 9 jobs" in out
    assert re.search(r"13_hernquist_accelerations \[seed 2\] +after: 11_hernquist_data, 12_h", out)
    for stem in ("11_hernquist_data", "12_hernquist_flows", "13_hernquist_accelerations"):
        assert re.search(rf"nb{stem} +3\n", out), out  # Snakemake's job stats
    assert "This was a dry-run" in out
    assert not list(tmp_path.rglob("*.job.json")) and not list(tmp_path.rglob("*.ipynb"))


def _fake_notebooks(folder, failing):
    folder.mkdir()
    for stem in ("11_hernquist_data", "12_hernquist_flows", "13_hernquist_accelerations"):
        body = "raise RuntimeError('boom')" if stem == failing else "x = 1"
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(body)])
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nb.metadata["language_info"] = {"name": "python"}
        nbformat.write(nb, folder / f"{stem}.ipynb")


def test_keep_going_runs_every_notebook_and_reports_each_failure(tmp_path, monkeypatch, capsys):
    """Through Snakemake, with stand-in notebooks: 11 fails, 12 and 13 succeed."""
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    monkeypatch.setattr(run_all, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(run_all, "write_results", lambda *a, **k: "table")
    _fake_notebooks(tmp_path / "notebooks", failing="11_hernquist_data")
    runs = tmp_path / "data" / "runs" / "smoke"

    def ran():
        return sorted(p.name.removesuffix(".job.json") for p in runs.glob("*.job.json"))

    assert run_all.main(["--profile", "smoke", "--only", "1", "--keep-going"]) == 1
    out = capsys.readouterr().out
    assert ran() == ["11_hernquist_data", "12_hernquist_flows", "13_hernquist_accelerations"]
    assert "FAILED 11_hernquist_data: cell 1 (execution count 2) raised RuntimeError: boom" in out
    assert re.search(r"ok   12_hernquist_flows +\d", out)
    assert (runs / "11_hernquist_data.failed.ipynb").exists()
    assert (runs / "12_hernquist_flows.ipynb").exists()
    # without --keep-going the first failure stops the run
    assert run_all.main(["--profile", "smoke", "--only", "1"]) == 1
    assert ran() == ["11_hernquist_data"]
    assert "FAILED 11_hernquist_data" in capsys.readouterr().out
    # a sweep runs every seed after a failure: each seed's failure is one of its data points
    assert run_all.main(["--profile", "smoke", "--only", "1", "--seeds", "0-1"]) == 1
    for k in (0, 1):
        assert sorted(p.name.removesuffix(".job.json") for p in (runs / f"seed{k}").glob("*.job.json")) == [
            "11_hernquist_data", "12_hernquist_flows", "13_hernquist_accelerations"
        ]  # fmt: skip


def _per_seed():
    values = {0: 0.020, 1: 0.030, 2: 0.035}  # ≤ 0.03 on the mean 0.0283, thin: se 0.0044
    fails = {0: 0.04, 1: 0.05, 2: 0.045}  # ≤ 0.03 fails on the mean
    return {
        ("13_hernquist_accelerations", k): {
            "median_err_isotropic": values[k],
            "median_err_beta_half": fails[k],
            "seed": k,
            "wall_s": 3.0,
            "provenance": {},
        }
        for k in values
    }


def test_sweep_table_aggregates_and_checks_targets_on_the_mean():
    agg = results.aggregate([1.0, 2.0, 3.0, 6.0])
    assert agg["n"] == 4 and agg["mean"] == 3.0 and agg["min"] == 1.0 and agg["max"] == 6.0
    assert math.isclose(agg["sd"], math.sqrt(14 / 3))
    assert math.isclose(agg["se"], agg["sd"] / 2)
    assert math.isnan(results.aggregate([1.0])["sd"])
    text = results.sweep_table("default", _per_seed(), [0, 1, 2])
    assert "## Seed sweep: seeds 0, 1, 2" in text
    iso = next(line for line in text.splitlines() if "| median_err_isotropic |" in line)
    cells = [c.strip() for c in iso.strip("|").split("|")]
    assert cells[:3] == ["13_hernquist_accelerations", "median_err_isotropic", "3"]
    agg = results.aggregate([0.020, 0.030, 0.035])
    assert cells[3] == f"{agg['mean']:.4g}" and cells[6:8] == ["0.02", "0.035"]
    assert cells[8] == f"{agg['mean']:.4g} ± {agg['se']:.4g}"
    assert cells[9] == "≤ 0.03" and cells[10] == "pass (thin)"
    beta = next(line for line in text.splitlines() if "| median_err_beta_half |" in line)
    assert "**FAILS on the mean**" in beta
    assert "Targets that fail on the seed mean:" in text
    assert "wall_s" not in text and "| seed |" not in text
    partial = dict(_per_seed())
    del partial[("13_hernquist_accelerations", 2)]
    assert "Missing (failed or not run): 13_hernquist_accelerations seed 2." in (
        results.sweep_table("default", partial, [0, 1, 2])
    )


def test_sweep_section_lands_in_results_and_figure_is_saved(tmp_path, monkeypatch):
    provenance.commit()  # cached from the repository before ROOT moves to tmp_path
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "DATA", tmp_path / "data")
    monkeypatch.setenv("ASTROGEN_PROFILE", "smoke")
    saved = results.sweep_figure("smoke", _per_seed())
    assert saved == ["data/runs/smoke/figures/hernquist/sweep_seeds.png"]
    assert (tmp_path / saved[0]).stat().st_size > 0
    extra = results.sweep_table("smoke", _per_seed(), [0, 1, 2])
    text = results.write_results("smoke", ["13_hernquist_accelerations"], {}, 1.0, extra)
    assert text.endswith(extra) and paths.results_table("smoke").read_text() == text
    # the sweep's rows are not mistaken for a notebook's rows by the next run
    assert results._previous_rows(text, "smoke") == {}


def test_threads_limit_holds_torch_and_blas(monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    monkeypatch.setenv("ASTROGEN_THREADS", "1")
    for name in (*threads.THREAD_VARIABLES, "LOKY_MAX_CPU_COUNT"):
        monkeypatch.setenv(name, "1")
    try:
        assert threads.limit() == 1
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    finally:
        torch.set_num_threads(before)
        threads._limiter.restore_original_limits()
    monkeypatch.setenv("ASTROGEN_THREADS", "0")
    with pytest.raises(ValueError, match="positive integer"):
        threads.declared()
    monkeypatch.delenv("ASTROGEN_THREADS")
    assert threads.limit() is None
    assert threads.environment(3)["OMP_NUM_THREADS"] == "3"
