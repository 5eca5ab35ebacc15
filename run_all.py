#!/usr/bin/env python
"""Regenerate every data set, checkpoint, figure and number: run the numbered notebooks.

    python run_all.py                          # default profile, every study, in order
    python run_all.py --profile smoke          # tiny sizes (what the tests run)
    python run_all.py --only 1                 # study 1 only (or --only hernquist, --only 12)
    python run_all.py -p hernquist.flow.epochs=5   # a field of study 1's configuration
    python run_all.py -p 12.flow.epochs=5      # ... for notebook 12 only
    python run_all.py -p n_stars=10000         # an unscoped name that only one field has
    python run_all.py --keep-going             # run on after a failed notebook
    python run_all.py --force                  # ignore cached artifacts and rebuild them
    python run_all.py --list                   # list notebooks and their configuration fields

Every override is checked against the studies' typed configurations (name, type, range) before
anything runs. Executed notebooks go to data/runs/<profile>/, metrics to data/metrics/<profile>/,
the table of all metrics to figures/RESULTS.md and the headline table into README.md. Artifacts
are cached by configuration, so a run that was interrupted resumes where it stopped.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

import papermill as pm
from tqdm.auto import tqdm

from astrogen import config, paths, results
from astrogen.notebook import STUDIES, configuration, resolve, study_of

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
RUN_PARAMETERS = {"seed"}  # notebook parameters besides the configuration
RESERVED = {"profile": "use --profile", "overrides": "give the fields themselves"}


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


def _scope(name: str, notebooks: list[Path]) -> tuple[list[Path], str]:
    """The notebooks a scoped name applies to, and the name within their study's config."""
    head, _, rest = name.partition(".")
    if rest and head.isdigit():
        hit = [nb for nb in notebooks if nb.stem.startswith(head)]
        if not hit:
            raise SystemExit(f"-p {name}: no selected notebook starts with {head!r}")
        return hit, rest
    if rest and head in STUDIES.values():
        hit = [nb for nb in notebooks if study_of(nb.stem) == head]
        if not hit:
            raise SystemExit(f"-p {name}: study {head!r} is not among the selected notebooks")
        return hit, rest
    return notebooks, name


def overrides_per_notebook(notebooks: list[Path], overrides: dict) -> dict[Path, dict]:
    """Give each notebook its configuration overrides (dotted field → value) and run parameters.

    Raises:
        SystemExit: for a reserved name, a name no selected study has (listing the valid ones),
            an unscoped name that fields of several studies have (listing them), or a value of
            the wrong type or range (naming the field).
    """
    out: dict[Path, dict] = {nb: {"overrides": {}} for nb in notebooks}
    for name, value in overrides.items():
        if name in RESERVED:
            raise SystemExit(f"-p {name}: reserved, {RESERVED[name]}")
        if name in RUN_PARAMETERS:
            for nb in notebooks:
                out[nb][name] = value
            continue
        targets, field = _scope(name, notebooks)
        matched: dict[str, str] = {}
        for study in dict.fromkeys(study_of(nb.stem) for nb in targets):
            try:
                matched[study] = config.match_field(configuration(study).Config, field)
            except config.ConfigError as err:
                if "ambiguous" in str(err) or field != name:
                    raise SystemExit(f"-p {name}: {err}") from None
        if not matched:
            valid = {
                s: sorted(config.field_specs(configuration(s).Config))
                for s in dict.fromkeys(study_of(nb.stem) for nb in targets)
            }
            raise SystemExit(f"-p {name}: no such configuration field; valid names: {valid}")
        if len(matched) > 1:
            listed = [f"{s}.{f}" for s, f in matched.items()]
            raise SystemExit(f"-p {name}: ambiguous, it matches {listed}; give the study")
        for nb in targets:
            if study_of(nb.stem) in matched:
                out[nb]["overrides"][matched[study_of(nb.stem)]] = value
    return out


def validate(notebooks: list[Path], profile: str, given: dict[Path, dict]) -> None:
    """Resolve every selected notebook's configuration now, so a bad value stops the run early."""
    for nb in notebooks:
        try:
            resolve(nb.stem, profile, given[nb]["overrides"])
        except config.ConfigError as err:
            raise SystemExit(f"{nb.stem}: {err}") from None
        seed = given[nb].get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SystemExit(f"-p seed={seed!r}: expected a non-negative integer")


def run_notebook(nb: Path, profile: str, parameters: dict, timeout: int) -> tuple[bool, float, str]:
    """Execute one notebook with papermill; return (ok, seconds, error description).

    The executed copy is written beside its final place and moved there only when the notebook
    succeeded, so a killed or failed run never replaces the last good executed notebook; a
    failed one is kept as ``<name>.failed.ipynb``.
    """
    out = paths.runs_dir(profile) / nb.name
    partial = out.with_name(f".{nb.stem}.partial.ipynb")
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(partial),
            parameters={"profile": profile, **parameters},
            kernel_name="python3",
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as err:
        partial.replace(out.with_suffix(".failed.ipynb"))
        return (
            False,
            time.perf_counter() - start,
            (
                f"cell {err.cell_index} (execution count {err.exec_count}) raised "
                f"{err.ename}: {err.evalue}"
            ),
        )
    except Exception as err:  # cell time-outs, dead kernels, missing kernels
        if partial.exists():
            partial.replace(out.with_suffix(".failed.ipynb"))
        return False, time.perf_counter() - start, f"{type(err).__name__}: {err}"
    os.replace(partial, out)
    return True, time.perf_counter() - start, ""


def write_results(profile: str, this_run: dict[str, tuple[bool, float]], total: float) -> str:
    """``figures/RESULTS.md`` (smoke: under data/) and, for the default profile, the README."""
    text = results.write_results(profile, [nb.stem for nb in discover()], this_run, total)
    if profile == "default":
        results.update_readme(ROOT / "README.md", profile)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--profile", choices=list(config.PROFILES), default="default")
    ap.add_argument("--only", action="append", help="study digit/name or notebook (repeatable)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--force", action="store_true", help="rebuild cached artifacts")
    ap.add_argument("--keep-going", action="store_true", help="run on after a failed notebook")
    ap.add_argument("--list", action="store_true", help="list notebooks and fields, then exit")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell time-out in seconds")
    args = ap.parse_args(argv)

    notebooks = select(discover(), args.only)
    if args.list:
        for nb in notebooks:
            cfg = resolve(nb.stem, args.profile)
            fields = ", ".join(f"{k}={v!r}" for k, v in config.flatten(cfg).items())
            print(f"{nb.stem} [{study_of(nb.stem)}]: {fields}")
        return 0
    per_notebook = overrides_per_notebook(notebooks, parse_overrides(args.param))
    validate(notebooks, args.profile, per_notebook)

    os.environ["ASTROGEN_PROFILE"] = args.profile
    # --force: artifacts older than this run are rebuilt, once; later notebooks reuse them.
    os.environ["ASTROGEN_FORCE"] = "1" if args.force else ""
    os.environ["ASTROGEN_RUN_START"] = repr(time.time())
    os.environ.setdefault("MPLBACKEND", "Agg")
    this_run, failures, start = {}, [], time.perf_counter()
    bar = tqdm(notebooks, desc=f"run_all [{args.profile}]", unit="notebook")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        ok, secs, error = run_notebook(nb, args.profile, per_notebook[nb], args.timeout)
        this_run[nb.stem] = (ok, secs)
        tqdm.write(f"{'ok  ' if ok else 'FAIL'} {nb.stem:<32s} {secs:7.1f} s")
        if not ok:
            failures.append((nb, error))
            tqdm.write(f"\n{nb.name} failed: {error}\n")
            if not args.keep_going:
                break
    text = write_results(args.profile, this_run, time.perf_counter() - start)
    print()
    print(text)
    for nb, error in failures:
        kept = paths.runs_dir(args.profile) / f"{nb.stem}.failed.ipynb"
        print(f"FAILED {nb.stem}: {error}\n  executed notebook kept at {kept}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
