"""Runs killed from outside: SIGINT or SIGKILL of the driver, SIGKILL of the notebook's kernel or of
one of its training workers, in the middle of notebook 12 (smoke profile), then the same command
again.

Each killed run must end by itself (no process of it left, nothing in ``$TMPDIR``, no partial
file in the data folder, the last good executed notebook and metrics untouched) and report what
happened; the rerun must succeed and give the metrics of a clean run. Every run works in its own
copy of the repository's runnable part (``ASTROGEN_ROOT``), so nothing here touches ``data/``.
About 5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrogen import notebook

REPO = Path(__file__).resolve().parents[1]
STEM = "12_hernquist_flows"
COMMAND = ("--profile", "smoke", "--only", "11", "--only", "12", "--cores", "2")
TIMING = ("_per_s", "wall_s", "speedup", "_seconds", "train_s")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds a run's processes through /proc"
)


def _checkout(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("run_all.py", "README.md"):
        shutil.copy2(REPO / name, root / name)
    for name in ("notebooks", "workflow"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns(".ipynb_*"))
    (root / "tmp").mkdir()
    return root


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ASTROGEN_ROOT": str(root),
        "ASTROGEN_PROFILE": "smoke",
        "MPLBACKEND": "Agg",
        "TMPDIR": str(root / "tmp"),
    }


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(root: Path, background: bool = False) -> subprocess.Popen:
    """The run, as from a terminal, or ``background`` as a shell's background job (``cmd &``),
    which starts with SIGINT ignored."""
    return subprocess.Popen(
        [sys.executable, str(root / "run_all.py"), *COMMAND],
        cwd=root,
        env=_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ignore_sigint if background else None,
    )


def _run(root: Path) -> str:
    proc = _start(root)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-4000:]
    return out


def processes(root: Path) -> dict[int, str]:
    """pid → command line of every process of the run in ``root`` (they carry its root)."""
    mark = f"ASTROGEN_ROOT={root}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except OSError:
            continue  # ended meanwhile, or another user's
    return found


def _wait_for(root: Path, what: str, timeout: float = 600.0) -> int:
    """The pid of the run's first process whose command line contains ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        hits = [pid for pid, cmd in processes(root).items() if what in cmd]
        if hits:
            return hits[0]
        time.sleep(0.2)
    raise TimeoutError(f"no process running {what!r}")


def numbers(root: Path) -> dict[str, float]:
    metrics = json.loads((root / "data" / "metrics" / "smoke" / f"{STEM}.json").read_text())
    return {
        k: v
        for k, v in metrics.items()
        if k not in notebook.RUN_KEYS and not any(t in k for t in TIMING)
    }


def stray_files(root: Path) -> list[str]:
    """Files no finished run should leave: temporaries, partial notebooks, job folders."""
    data = root / "data"
    left = [p for p in data.rglob("*.tmp") if p.is_file()]
    left += [*data.rglob("*.partial.ipynb"), *(root / "tmp").iterdir()]
    job_tmp = data / "runs" / "smoke" / ".job-tmp"
    if job_tmp.exists():
        left += list(job_tmp.iterdir())
    return sorted(str(p.relative_to(root)) for p in left)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A clean run of notebooks 11 and 12 from nothing."""
    root = _checkout(tmp_path_factory.mktemp("kills") / "clean")
    _run(root)
    assert stray_files(root) == []  # e.g. no pymp-* folder of the training workers
    return root


def _kill_driver(sig: signal.Signals):
    def kill(driver: subprocess.Popen, root: Path) -> None:
        driver.send_signal(sig)

    return kill


def _kill_process(what: str):
    def kill(driver: subprocess.Popen, root: Path) -> None:
        os.kill(_wait_for(root, what), signal.SIGKILL)

    return kill


# what is killed, how the killed run ends: exit status and a line it prints; and whether the
# run was started as a background job (SIGINT ignored, which run_all.py and its jobs undo)
CASES = {
    "SIGINT of the driver": (_kill_driver(signal.SIGINT), 130, "interrupted after", False),
    "SIGINT of a background driver": (_kill_driver(signal.SIGINT), 130, "interrupted after", True),
    "SIGKILL of the driver": (_kill_driver(signal.SIGKILL), -signal.SIGKILL, None, False),
    "SIGKILL of a background driver": (_kill_driver(signal.SIGKILL), -signal.SIGKILL, None, True),
    "SIGKILL of the kernel": (_kill_process("ipykernel_launcher"), 1, "DeadKernelError", False),
    "SIGKILL of a worker": (_kill_process("spawn_main"), 1, "BrokenProcessPool", False),
}


@pytest.mark.fault
@pytest.mark.parametrize("case", list(CASES))
def test_killed_run_ends_cleanly_and_its_rerun_equals_a_clean_run(case, clean, tmp_path):
    kill, status, says, background = CASES[case]
    root = tmp_path / "root"
    shutil.copytree(clean, root)
    # notebook 12 trains again; its last good outputs must survive the killed run
    shutil.rmtree(root / "data" / "checkpoints" / "hernquist")
    executed = root / "data" / "runs" / "smoke" / f"{STEM}.ipynb"
    metrics = root / "data" / "metrics" / "smoke" / f"{STEM}.json"
    good = executed.read_bytes(), metrics.read_bytes()

    driver = _start(root, background)
    _wait_for(root, "spawn_main")  # the members are training
    time.sleep(1.0)
    kill(driver, root)
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == status, out[-3000:]
    if says:
        assert says in out, out[-3000:]

    end = time.monotonic() + 60
    while processes(root) and time.monotonic() < end:
        time.sleep(0.5)
    assert processes(root) == {}, "processes of the killed run left running"
    assert stray_files(root) == []
    assert (executed.read_bytes(), metrics.read_bytes()) == good

    _run(root)
    assert numbers(root) == numbers(clean)
    assert stray_files(root) == []
