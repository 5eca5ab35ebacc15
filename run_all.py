#!/usr/bin/env python
"""Regenerate every data set, checkpoint, figure and number: run the numbered notebooks.

    python run_all.py                      # default profile, every study, in order
    python run_all.py --profile smoke      # tiny sizes (what the tests run)
    python run_all.py --only 1             # study 1 only (or --only hernquist, --only 12)
    python run_all.py -p epochs=5          # override a parameter of every selected notebook
    python run_all.py --force              # ignore cached artifacts and rebuild them
    python run_all.py --list               # list notebooks and their parameters

Executed notebooks go to data/runs/<profile>/, metrics to data/metrics/<profile>/, and a table
of headline metrics to figures/RESULTS.md. Artifacts are cached by parameter hash, so a run that
was interrupted resumes where it stopped.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import papermill as pm
from tqdm.auto import tqdm

from astrogen import paths

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
STUDIES = {"1": "hernquist", "2": "clusters", "3": "balrog", "4": "anomaly", "5": "galforge"}
RESERVED = {"profile", "seed"}


def discover() -> list[Path]:
    """Numbered notebooks ``NN_*.ipynb`` in study order."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Filter by study digit, study name or notebook prefix/name; error if nothing matches."""
    if not only:
        return notebooks
    chosen = []
    for nb in notebooks:
        study = STUDIES.get(nb.name[0], "")
        if any(o in (nb.name[0], study) or nb.stem.startswith(o) for o in only):
            chosen.append(nb)
    if not chosen:
        names = ", ".join(p.stem for p in notebooks)
        raise SystemExit(
            f"--only {only}: no notebook matches; studies {STUDIES}, notebooks {names}"
        )
    return chosen


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` strings → dict, values parsed as Python literals when possible."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"-p {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def notebook_parameters(nb: Path) -> dict:
    """The parameters papermill finds in the notebook's ``parameters`` cell."""
    return pm.inspect_notebook(str(nb))


def overrides_per_notebook(notebooks: list[Path], overrides: dict) -> dict[Path, dict]:
    """Give each notebook the overrides it declares; a name no selected notebook has is an error.

    Raises:
        SystemExit: naming the unknown parameter(s) and listing the valid ones per notebook.
    """
    declared = {nb: set(notebook_parameters(nb)) for nb in notebooks}
    known = set().union(*declared.values())
    unknown = sorted(set(overrides) - known)
    if unknown:
        valid = "; ".join(f"{nb.stem}: {sorted(names)}" for nb, names in declared.items())
        raise SystemExit(f"unknown parameter(s) {unknown}; valid parameters: {valid}")
    return {
        nb: {k: v for k, v in overrides.items() if k in names} for nb, names in declared.items()
    }


def run_notebook(nb: Path, profile: str, overrides: dict, timeout: int) -> tuple[bool, float, str]:
    """Execute one notebook with papermill; return (ok, seconds, error description)."""
    out = DATA / "runs" / profile / nb.name
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters={"profile": profile, **overrides},
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as err:
        return (
            False,
            time.perf_counter() - start,
            (
                f"cell {err.cell_index} (execution count {err.exec_count}) raised "
                f"{err.ename}: {err.evalue}"
            ),
        )
    except Exception as err:  # cell time-outs, dead kernels, missing kernels
        return False, time.perf_counter() - start, f"{type(err).__name__}: {err}"
    return True, time.perf_counter() - start, ""


def load_metrics(profile: str, nb: Path) -> dict:
    path = DATA / "metrics" / profile / f"{nb.stem}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _rows_by_notebook(table: str, profile: str) -> dict[str, list[str]]:
    """The rows per notebook of an existing results table of ``profile`` (none if the table is
    another profile's), as written by :func:`write_results`; a successful row is marked as an
    earlier run, a failed one stays marked as failed."""
    if f"- profile: `{profile}`" not in table.splitlines():
        return {}
    out: dict[str, list[str]] = {}
    current = None
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("notebook", "---"):
            continue
        if cells[0]:
            current = cells[0]
            cells[1] = "FAILED (earlier run)" if "FAILED" in cells[1] else "earlier run"
            line = "| " + " | ".join(cells) + " |"
            out[current] = []
        if current is not None:
            out[current].append(line)
    return out


def write_results(profile: str, rows: list[tuple[Path, bool, float]], total: float) -> str:
    """Markdown table of every notebook's headline metrics; written to figures/RESULTS.md
    (``data/runs/smoke/RESULTS.md`` for the smoke profile, see :func:`astrogen.paths.results_table`).

    Notebooks not run this time keep the metrics of their last run of the same profile, marked
    as such, so ``--only`` never drops other studies from the table; where that run's metrics
    are not on this machine (``data/`` is not versioned, e.g. in a fresh clone), their rows are
    carried over from the existing table.
    """
    meta = {"profile", "seed", "device", "wall_s", "machine", "cpu_threads"}
    this_run = {nb: (ok, secs) for nb, ok, secs in rows}
    results = paths.results_table(profile)
    previous = _rows_by_notebook(results.read_text(), profile) if results.exists() else {}
    lines = [
        "# Results",
        "",
        f"- profile: `{profile}`",
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPU threads, "
        f"python {platform.python_version()}",
        f"- wall time of this run: {total / 60:.1f} min",
        "",
        "| notebook | status | wall time [s] | device | seed | metric | value |",
        "|---|---|---|---|---|---|---|",
    ]
    for nb in discover():
        metrics = load_metrics(profile, nb)
        if nb in this_run:
            ok, secs = this_run[nb]
            status = "ok" if ok else "FAILED"
        elif metrics:
            status, secs = "earlier run", float(metrics.get("wall_s", float("nan")))
        else:
            lines += previous.get(nb.stem, [])
            continue
        head = (
            f"| {nb.stem} | {status} | {secs:.0f} | {metrics.get('device', '')} "
            f"| {metrics.get('seed', '')} "
        )
        values = [(k, v) for k, v in metrics.items() if k not in meta]
        if not values:
            lines.append(head + "| | |")
        for i, (k, v) in enumerate(values):
            prefix = head if i == 0 else "| | | | | "
            lines.append(prefix + f"| {k} | {v:.4g} |")
    text = "\n".join(lines) + "\n"
    tmp = results.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, results)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--profile", choices=["smoke", "default", "full"], default="default")
    ap.add_argument("--only", action="append", help="study digit/name or notebook (repeatable)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--force", action="store_true", help="rebuild cached artifacts")
    ap.add_argument("--list", action="store_true", help="list notebooks and parameters, then exit")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell time-out in seconds")
    args = ap.parse_args(argv)

    notebooks = select(discover(), args.only)
    if args.list:
        for nb in notebooks:
            params = {k: v["default"] for k, v in notebook_parameters(nb).items()}
            print(f"{nb.stem}: {params}")
        return 0
    per_notebook = overrides_per_notebook(notebooks, parse_overrides(args.param))

    os.environ["ASTROGEN_PROFILE"] = args.profile
    # --force: artifacts older than this run are rebuilt, once; later notebooks reuse them.
    os.environ["ASTROGEN_FORCE"] = "1" if args.force else ""
    os.environ["ASTROGEN_RUN_START"] = repr(time.time())
    os.environ.setdefault("MPLBACKEND", "Agg")
    rows, start = [], time.perf_counter()
    bar = tqdm(notebooks, desc=f"run_all [{args.profile}]", unit="notebook")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        ok, secs, error = run_notebook(nb, args.profile, per_notebook[nb], args.timeout)
        rows.append((nb, ok, secs))
        tqdm.write(f"{'ok  ' if ok else 'FAIL'} {nb.stem:<32s} {secs:7.1f} s")
        if not ok:
            partial = DATA / "runs" / args.profile / nb.name
            tqdm.write(f"\n{nb.name} failed: {error}\npartial executed notebook kept at {partial}")
            write_results(args.profile, rows, time.perf_counter() - start)
            return 1
    print()
    print(write_results(args.profile, rows, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
