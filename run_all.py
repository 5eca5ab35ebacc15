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
    python run_all.py --cores 4                # run up to 4 threads' worth of jobs at once
    python run_all.py --dry-run                # print the job graph, run nothing
    python run_all.py --only 1 --seeds 0-4     # a seed sweep: every notebook per seed
    python run_all.py --executor slurm         # submit the jobs to SLURM (workflow/profiles/slurm)

The notebooks run as the jobs of a Snakemake workflow (workflow/Snakefile): a notebook waits for
the earlier notebooks of its study, studies run concurrently when cores allow, and each job gets
the threads, memory, GPUs and time limit declared for its notebook in astrogen.resources (its
threads also in OMP_NUM_THREADS and ASTROGEN_THREADS). Every override is checked against the studies' typed configurations (name, type, range) before
anything runs. Executed notebooks go to data/runs/<profile>/, metrics to data/metrics/<profile>/,
the table of all metrics to figures/RESULTS.md and the headline table into README.md. Artifacts
are cached by configuration, so a run that was interrupted resumes where it stopped.

A seed sweep runs each selected notebook once per seed (executed notebooks under
data/runs/<profile>/seed<k>/) and adds to figures/RESULTS.md a table per metric over the seeds
(mean, sd, standard error, min, max, n) with the targets checked on the seed mean, and a figure
figures/<study>/sweep_seeds.png of the headline metrics against seed. A sweep runs on after a
failed notebook (one seed's failure is one of its data points). The single-seed metrics,
figures and README table are left as the last single-seed run made them.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from astrogen import config, paths, results
from astrogen.notebook import STUDIES, configuration, resolve, study_of
from astrogen.resources import RESOURCES

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
SNAKEFILE = ROOT / "workflow" / "Snakefile"
SLURM_PROFILE = ROOT / "workflow" / "profiles" / "slurm"
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


@dataclass(frozen=True)
class Job:
    """One notebook run of the workflow; ``seed`` is None outside a seed sweep."""

    notebook: str
    seed: int | None
    after: tuple[str, ...]  # the notebooks (of the same seed) it waits for

    @property
    def label(self) -> str:
        return self.notebook if self.seed is None else f"{self.notebook} [seed {self.seed}]"


def parse_seeds(spec: str) -> list[int]:
    """``0-4``, ``0,2,5`` or ``0-2,7`` → sorted distinct seeds."""
    seeds: set[int] = set()
    for part in spec.split(","):
        found = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not found:
            raise SystemExit(f"--seeds {spec!r}: expected e.g. 0-4 or 0,2,5")
        lo, hi = int(found[1]), int(found[2] if found[2] is not None else found[1])
        if hi < lo:
            raise SystemExit(f"--seeds {spec!r}: {lo}-{hi} is an empty range")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def plan(notebooks: list[Path], seeds: list[int] | None = None) -> list[Job]:
    """The job graph: every selected notebook once (per seed), after the earlier selected
    notebooks of its study; the workflow (workflow/Snakefile) builds the same graph."""
    stems = [nb.stem for nb in notebooks]
    return [
        Job(stem, seed, tuple(s for s in stems[:i] if s[0] == stem[0]))
        for seed in (seeds if seeds is not None else [None])
        for i, stem in enumerate(stems)
    ]


def record_path(runs: Path, job: Job) -> Path:
    """Where a job's record lands: ``<runs>/[seed<k>/]<name>.job.json``."""
    return (runs if job.seed is None else runs / f"seed{job.seed}") / f"{job.notebook}.job.json"


def workflow_config(
    notebooks: list[Path],
    given: dict[Path, dict],
    profile: str,
    seeds: list[int] | None,
    timeout: int,
    keep_going: bool,
    runs: Path,
) -> dict:
    """The Snakefile's configuration: the notebooks in order with their parameters, and more."""
    return {
        "profile": profile,
        "seeds": seeds,
        "timeout": timeout,
        "keep_going": keep_going,
        "python": sys.executable,
        "runs": str(runs),
        "metrics": str(paths.metrics_dir(profile)),
        "config_file": str(runs / "workflow.json"),
        # local jobs stop when this process is gone (see workflow/job.py)
        "driver": {"pid": os.getpid(), "host": socket.gethostname()},
        "notebooks": [
            {"stem": nb.stem, "path": str(nb), "parameters": given[nb]} for nb in notebooks
        ],
    }


def snakemake_command(args: argparse.Namespace, cfg: dict, jobs: list[Job]) -> list[str]:
    """The ``snakemake`` command line of this run."""
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(SNAKEFILE),
        "--directory", cfg["runs"],
        "--configfile", cfg["config_file"],
        # run_all decides what runs: every selected job, whatever Snakemake's bookkeeping says
        "--forceall", "--rerun-incomplete",
        # a failed job's record says why it failed; keep it
        "--keep-incomplete",
        # one run per profile at a time; a killed run's lock must not block the next one
        "--nolock",
        "--cores", str(args.cores),
        "--printshellcmds",
    ]  # fmt: skip
    if cfg["keep_going"]:
        cmd.append("--keep-going")
    if args.executor == "slurm":
        cmd += ["--profile", str(args.slurm_profile), "--executor", "slurm"]
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
    elif args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    if cfg["seeds"] is not None:
        # one seed at a time per notebook: they share its metrics file and figures
        cmd += ["--resources", *sorted({f"sweep_{j.notebook[:2]}=1" for j in jobs})]
    return cmd


def print_graph(jobs: list[Job], profile: str) -> None:
    """The job graph, one job a line with what it waits for and what it asks for."""
    print(f"job graph [{profile}]: {len(jobs)} jobs")
    for job in jobs:
        res = RESOURCES[job.notebook]
        want = res.for_profile(profile)
        asks = f"{res.threads} thr, {want['mem_mb']} MB, {want['runtime']} min" + (
            f", {want['gpu']} GPU" if "gpu" in want else ""
        )
        after = ", ".join(job.after) if job.after else "-"
        print(f"  {job.label:<42s} after: {after:<44s} [{asks}]")


#: Seconds an interrupted run gives Snakemake to stop its jobs before it is killed.
INTERRUPT_GRACE_S = 60


class Interrupted(Exception):
    """The run was interrupted (Ctrl-C, SIGINT); ``records`` are the jobs that finished."""

    def __init__(self, records: dict[Job, dict]):
        super().__init__("interrupted")
        self.records = records


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _stop_with_driver(driver: int) -> None:
    """In the Snakemake child, before it starts: have the kernel send it SIGINT when this driver
    dies, however it dies (even SIGKILL), so it ends rather than going on without a driver."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGINT))
    if os.getppid() != driver:  # the driver died before the call above
        os.kill(os.getpid(), signal.SIGINT)


def execute(cmd: list[str], jobs: list[Job], runs: Path) -> tuple[dict[Job, dict], int]:
    """Run Snakemake; print one line per finished notebook as its record appears.

    Returns the records of the jobs that ran, and Snakemake's exit status.
    """
    for job in jobs:
        record_path(runs, job).unlink(missing_ok=True)
    log = runs / "snakemake.log"
    records: dict[Job, dict] = {}

    def collect() -> None:
        for job in jobs:
            path = record_path(runs, job)
            if job in records or not path.exists():
                continue
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # written atomically, so only a record from another run; skip
            records[job] = rec
            where = f"  (SLURM job {rec['slurm_job_id']})" if rec.get("slurm_job_id") else ""
            print(
                f"{'ok  ' if rec['ok'] else 'FAIL'} {job.label:<42s} {rec['seconds']:7.1f} s{where}",
                flush=True,
            )
            if not rec["ok"]:
                print(f"\n{job.label} failed: {rec['error']}\n", flush=True)

    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group: the jobs' shells join it
            preexec_fn=functools.partial(_stop_with_driver, os.getpid()),
        )
        try:
            while proc.poll() is None:
                collect()
                time.sleep(0.5)
        except KeyboardInterrupt:
            # Ctrl-C to Snakemake and its local jobs, as a terminal sends it to its foreground
            # group: the jobs shut their kernels down, Snakemake (SLURM: cancels its jobs) ends.
            _signal_group(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            collect()
            raise Interrupted(records) from None
    collect()
    if proc.returncode != 0 and not any(not r["ok"] for r in records.values()):
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        print(f"\nsnakemake exited with {proc.returncode}; the end of {log}:\n{tail}")
    return records, proc.returncode


def _snapshot(notebooks: list[Path], profile: str, into: Path) -> list[tuple[Path, Path]]:
    """Copy the selected notebooks' metrics files and their studies' figures aside."""
    saved = []
    targets = [paths.metrics_dir(profile) / f"{nb.stem}.json" for nb in notebooks]
    targets += [
        paths.figure_dir(s, profile) for s in dict.fromkeys(study_of(nb.stem) for nb in notebooks)
    ]
    shutil.rmtree(into, ignore_errors=True)
    for i, path in enumerate(targets):
        copy = into / str(i)
        if path.is_dir():
            shutil.copytree(path, copy)
        elif path.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
        saved.append((path, copy))
    return saved


def _restore(saved: list[tuple[Path, Path]]) -> None:
    for path, copy in saved:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if copy.is_dir():
            shutil.copytree(copy, path)
        elif copy.exists():
            shutil.copy2(copy, path)


def write_results(
    profile: str, this_run: dict[str, tuple[bool, float]], total: float, extra: str = ""
) -> str:
    """``figures/RESULTS.md`` (smoke: under data/) and, for the default profile, the README."""
    text = results.write_results(profile, [nb.stem for nb in discover()], this_run, total, extra)
    if profile == "default":
        results.update_readme(ROOT / "README.md", profile)
    return text


def main(argv: list[str] | None = None) -> int:
    # A shell starts a background job (`nohup python run_all.py &`) with SIGINT ignored, and an
    # ignored signal stays ignored through exec: restore it, so `kill -INT` interrupts such a run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                    help="cores the local jobs share (default: the machine's)")  # fmt: skip
    ap.add_argument("--dry-run", action="store_true", help="print the job graph, run nothing")
    ap.add_argument("--seeds", metavar="SEEDS", help="seed sweep: 0-4, 0,2,5 or 0-2,7")
    ap.add_argument("--executor", choices=("local", "slurm"), default="local")
    ap.add_argument("--slurm-profile", type=Path, default=SLURM_PROFILE, metavar="DIR",
                    help="Snakemake profile for --executor slurm (default: %(default)s)")  # fmt: skip
    ap.add_argument("--jobs", type=int, help="at most this many jobs at once (SLURM: submitted)")
    args = ap.parse_args(argv)
    if args.cores < 1:
        raise SystemExit(f"--cores {args.cores}: expected a positive integer")

    notebooks = select(discover(), args.only)
    if args.list:
        for nb in notebooks:
            cfg = resolve(nb.stem, args.profile)
            fields = ", ".join(f"{k}={v!r}" for k, v in config.flatten(cfg).items())
            print(f"{nb.stem} [{study_of(nb.stem)}]: {fields}")
        return 0
    per_notebook = overrides_per_notebook(notebooks, parse_overrides(args.param))
    validate(notebooks, args.profile, per_notebook)
    seeds = parse_seeds(args.seeds) if args.seeds else None
    if seeds is not None and any("seed" in p for p in per_notebook.values()):
        raise SystemExit("-p seed=... and --seeds: give one of them")
    missing = [nb.stem for nb in notebooks if nb.stem not in RESOURCES]
    if missing:
        raise SystemExit(f"no resources declared in astrogen.resources for {missing}")

    jobs = plan(notebooks, seeds)
    runs = paths.runs_dir(args.profile)
    cfg = workflow_config(
        # A sweep runs every seed: one seed's failed targets are a data point of the sweep,
        # whose targets are judged on the seed mean.
        notebooks,
        per_notebook,
        args.profile,
        seeds,
        args.timeout,
        args.keep_going or seeds is not None,
        runs,
    )
    Path(cfg["config_file"]).write_text(json.dumps(cfg, indent=1))
    cmd = snakemake_command(args, cfg, jobs)
    if args.dry_run:
        print_graph(jobs, args.profile)
        print()
        done = subprocess.run(
            [*cmd, "--dry-run", "--quiet", "rules"], cwd=ROOT, capture_output=True, text=True
        )
        print(done.stdout + done.stderr)
        return done.returncode

    os.environ["ASTROGEN_PROFILE"] = args.profile
    # --force: artifacts older than this run are rebuilt, once; later notebooks reuse them.
    os.environ["ASTROGEN_FORCE"] = "1" if args.force else ""
    os.environ["ASTROGEN_RUN_START"] = repr(time.time())
    os.environ.setdefault("MPLBACKEND", "Agg")
    saved = _snapshot(notebooks, args.profile, runs / ".before-sweep") if seeds else []
    where = "SLURM" if args.executor == "slurm" else f"{args.cores} cores"
    print(f"run_all [{args.profile}]: {len(jobs)} jobs on {where}", flush=True)
    start = time.perf_counter()
    try:
        records, rc = execute(cmd, jobs, runs)
    except Interrupted as stop:
        done = ", ".join(job.label for job, rec in stop.records.items() if rec["ok"]) or "none"
        print(
            f"\ninterrupted after {time.perf_counter() - start:.0f} s; notebooks finished: {done}."
            "\nNothing was written over an earlier result; rerun the same command to go on from"
            " the cached artifacts.",
            flush=True,
        )
        return 130
    total = time.perf_counter() - start
    failures = [(job, rec) for job, rec in records.items() if not rec["ok"]]
    if seeds is None:
        this_run = {job.notebook: (rec["ok"], rec["seconds"]) for job, rec in records.items()}
        text = write_results(args.profile, this_run, total)
    else:
        _restore(saved)
        per_seed = {
            (job.notebook, job.seed): rec["metrics"]
            for job, rec in records.items()
            if rec["metrics"] is not None
        }
        sweep = results.sweep_table(args.profile, per_seed, seeds)
        figures = results.sweep_figure(args.profile, per_seed) if per_seed else []
        if figures:
            sweep += "\n" + "\n".join(f"![metrics against seed]({f})" for f in figures) + "\n"
        text = write_results(args.profile, {}, total, sweep)
    print()
    print(text)
    for job, rec in failures:
        print(f"FAILED {job.label}: {rec['error']}\n  executed notebook kept at {rec['executed']}")
    if rc != 0 and not failures:
        print(
            f"FAILED: the workflow stopped (snakemake exit status {rc}); see {runs}/snakemake.log"
        )
    return 1 if failures or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
