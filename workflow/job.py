#!/usr/bin/env python
"""One job of the workflow: execute one notebook (one seed) with papermill and record the outcome.

    python workflow/job.py <workflow.json> <notebook stem> <seed or -> <record.json>

Called by the rules of ``workflow/Snakefile``, never by hand. The executed notebook goes to
``<runs>/[seed<k>/]<name>.ipynb`` and is moved there only when the notebook succeeded, so a
killed or failed run never replaces the last good one; a failed one is kept as
``<name>.failed.ipynb``. The record (JSON: ok, seconds, error, host, SLURM job id, and for
seed-sweep members the metrics the notebook wrote) is what ``run_all.py`` reports from.

The job and everything it starts (kernel, training workers) keep their temporaries in a folder
of their own (``$TMPDIR``, removed when the job ends, or by the next job if it was killed); the job
stops like Ctrl-C on SIGTERM or when the ``run_all.py`` that started it is gone.

A failed notebook exits 1, unless the workflow runs with ``keep_going`` (``run_all.py
--keep-going``): then the later notebooks of its study run all the same, on whatever it cached.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from astrogen.processes import process_alive


def run_notebook(
    nb: Path, out_dir: Path, profile: str, parameters: dict, timeout: int
) -> tuple[bool, float, str]:
    """Execute ``nb`` into ``out_dir``; return (ok, seconds, error description)."""
    import papermill as pm

    from astrogen.kernels import IPCKernelManager

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / nb.name
    partial = out.with_name(f".{nb.stem}.partial.ipynb")
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb),
            str(partial),
            parameters={"profile": profile, **parameters},
            kernel_name="python3",
            kernel_manager_class=IPCKernelManager,  # no unencrypted TCP on localhost
            cwd=str(nb.parent),
            progress_bar=False,
            execution_timeout=timeout,
        )
    except KeyboardInterrupt:  # the run was stopped (SIGINT or SIGTERM): keep nothing partial
        partial.unlink(missing_ok=True)
        raise
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def job_tmpdir(base: Path, stem: str) -> Iterator[Path]:
    """``$TMPDIR`` of this job and everything it starts (kernel, workers, their temporaries),
    removed when the job ends; folders that killed jobs on this host left are removed first,
    so no run, killed or not, leaves files in ``/tmp``."""
    host = socket.gethostname() or platform.node()
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob(f"*@{host}@*"):
        if not process_alive(int(old.name.rsplit("@", 1)[1])):
            shutil.rmtree(old, ignore_errors=True)
    tmp = base / f"{stem}@{host}@{os.getpid()}"
    tmp.mkdir()
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None  # re-read $TMPDIR
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        tempfile.tempdir = None


def stop_with_driver(driver: dict | None) -> None:
    """Interrupt this job (as Ctrl-C does) once the ``run_all.py`` that started it is gone, e.g.
    killed with SIGKILL, so no notebook runs on without a driver. Local jobs only: a SLURM job
    runs on another host and SLURM cancels it."""
    if not driver or os.environ.get("SLURM_JOB_ID") or driver["host"] != socket.gethostname():
        return

    def watch() -> None:
        while process_alive(driver["pid"]):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    # Snakemake stops a job with SIGTERM: end it like Ctrl-C, so the kernel is shut down; and
    # SIGINT interrupts even where it was ignored when the job started (a background shell job)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    config_path, stem, seed_arg, record_path = argv
    cfg = json.loads(Path(config_path).read_text())
    entry = next(e for e in cfg["notebooks"] if e["stem"] == stem)
    parameters = dict(entry["parameters"])
    stop_with_driver(cfg.get("driver"))
    seed = None if seed_arg == "-" else int(seed_arg)
    runs = Path(cfg["runs"])
    out_dir = runs if seed is None else runs / f"seed{seed}"
    if seed is not None:
        parameters["seed"] = seed
    with job_tmpdir(runs / ".job-tmp", stem):
        ok, secs, error = run_notebook(
            Path(entry["path"]), out_dir, cfg["profile"], parameters, cfg["timeout"]
        )
    record = {
        "notebook": stem,
        "seed": parameters.get("seed", 0),
        "sweep": seed is not None,
        "ok": ok,
        "seconds": round(secs, 2),
        "error": error,
        "host": socket.gethostname() or platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "threads": os.environ.get("ASTROGEN_THREADS"),
        "executed": str(out_dir / (Path(entry["path"]).name if ok else f"{stem}.failed.ipynb")),
        "metrics": None,
    }
    metrics_file = Path(cfg["metrics"]) / f"{stem}.json"
    if seed is not None and metrics_file.exists():
        # Sweep members of one notebook run one at a time (see the Snakefile), so the shared
        # metrics file is this job's if it names this seed and was written during the job.
        metrics = json.loads(metrics_file.read_text())
        if metrics.get("seed") == seed and metrics_file.stat().st_mtime >= time.time() - secs - 1:
            record["metrics"] = metrics
    tmp = Path(record_path).with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, record_path)
    return 0 if ok or cfg.get("keep_going") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
