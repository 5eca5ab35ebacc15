"""A real single-node SLURM on localhost runs study 1 (smoke) through ``run_all.py --executor
slurm``; its metrics must equal a local run's.

Needs Debian's ``slurm-wlm`` and ``munge`` and root (``.ci/run`` installs them and sets
``ASTROGEN_REQUIRE_SLURM=1``, which turns their absence into a failure). The cluster: munged,
slurmctld and slurmd on 127.0.0.1 with a minimal ``slurm.conf`` (proctrack/linuxproc, no
cgroups, no accounting database); jobs are recorded by ``jobcomp/filetxt``, which
``sacct --completion`` reads, since plain ``sacct`` needs slurmdbd. The daemons are stopped at
the end. About 5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrogen import notebook

ROOT = Path(__file__).resolve().parents[1]
STUDY1 = ("11_hernquist_data", "12_hernquist_flows", "13_hernquist_accelerations")
# Measured speeds and clock times differ between any two runs; everything else must not.
TIMING = ("_per_s", "wall_s", "speedup", "_seconds")


def _missing() -> str | None:
    tools = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sacct")
    absent = [t for t in tools if shutil.which(t, path=os.environ["PATH"] + ":/usr/sbin") is None]
    if absent:
        return f"not installed: {absent} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "a local SLURM cluster needs root (to run munged as munge and slurmd)"
    return None


def _memory_mb() -> int:
    """The machine's memory in MB (slurmd's view), so jobs' --mem requests can be met."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 256
    return 4000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def _ok(*cmd: str, env=None) -> bool:
    return subprocess.run(cmd, capture_output=True, env=env).returncode == 0


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    why = _missing()
    if why:
        if os.environ.get("ASTROGEN_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM test required but cannot run: {why}")
        pytest.skip(f"SLURM test not run: {why}")
    base = tmp_path_factory.mktemp("slurm")
    for d in ("state", "spool", "log"):
        (base / d).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = base / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=astrogen-ci",
                f"SlurmctldHost={host}(127.0.0.1)",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                f"StateSaveLocation={base}/state",
                f"SlurmdSpoolDir={base}/spool",
                f"SlurmctldPidFile={base}/slurmctld.pid",
                f"SlurmdPidFile={base}/slurmd.pid",
                f"SlurmctldLogFile={base}/log/slurmctld.log",
                f"SlurmdLogFile={base}/log/slurmd.log",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/filetxt",
                f"JobCompLoc={base}/log/jobcomp.txt",
                "SchedulerType=sched/backfill",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MinJobAge=3600",  # squeue keeps finished jobs for the plugin's status checks
                "ReturnToService=2",
                "MpiDefault=none",
                f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} "
                f"RealMemory={_memory_mb()} State=UNKNOWN",
                "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    # srun inside a batch job (the plugin's job step) finds the configuration only at the
    # default place, not through $SLURM_CONF: link it there while the test runs.
    default_conf = Path("/etc/slurm/slurm.conf")
    if default_conf.exists() or default_conf.is_symlink():
        pytest.fail(f"{default_conf} exists: this test sets up its own cluster; remove it")
    started = []
    munged = None
    if not _ok("munge", "-n"):
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        munged = subprocess.Popen(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground"]
        )
        started.append(munged)
        _wait(lambda: _ok("munge", "-n"), "munged")
    try:
        default_conf.parent.mkdir(parents=True, exist_ok=True)
        default_conf.symlink_to(conf)
        for daemon in ("slurmctld", "slurmd"):
            started.append(
                subprocess.Popen(
                    [f"/usr/sbin/{daemon}", "-D", "-f", str(conf)],
                    env=env,
                    stdout=(base / "log" / f"{daemon}.out").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        _wait(
            lambda: (
                subprocess.run(
                    ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True
                ).stdout.strip()
                == "idle"
            ),
            "the node to be idle",
        )
        yield {"env": env, "base": base, "conf": conf}
    finally:
        default_conf.unlink(missing_ok=True)
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _run_all(*args: str, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_all.py"), "--profile", "smoke", "--only", "1", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def _records(runs: Path) -> dict[str, dict]:
    return {s: json.loads((runs / f"{s}.job.json").read_text()) for s in STUDY1}


def _numbers(stem: str) -> dict[str, float]:
    path = ROOT / "data" / "metrics" / "smoke" / f"{stem}.json"
    metrics = json.loads(path.read_text())
    return {
        k: v
        for k, v in metrics.items()
        if k not in notebook.RUN_KEYS and not any(t in k for t in TIMING)
    }


def test_study_1_runs_under_slurm_with_the_metrics_of_a_local_run(slurm_cluster, tmp_path):
    env = {**slurm_cluster["env"], "ASTROGEN_PROFILE": "smoke", "MPLBACKEND": "Agg"}
    runs = ROOT / "data" / "runs" / "smoke"
    _run_all("--cores", "2", env=env)
    local = {s: _numbers(s) for s in STUDY1}
    assert all(r["slurm_job_id"] is None for r in _records(runs).values())

    profile = tmp_path / "profile"
    profile.mkdir()
    repo_profile = (ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text()
    (profile / "config.yaml").write_text(
        repo_profile
        # no accounting database on this cluster: no account to charge, and job states
        # from squeue (which keeps finished jobs for MinJobAge) rather than sacct
        + "\nslurm-no-account: true\nslurm-status-command: squeue\n"
        + "slurm-init-seconds-before-status-checks: 5\nlatency-wait: 5\n"
    )
    done = _run_all("--executor", "slurm", "--slurm-profile", str(profile), env=env)
    records = _records(runs)
    ids = {s: r["slurm_job_id"] for s, r in records.items()}
    assert all(ids.values()), f"jobs without a SLURM job id: {ids}\n{done.stdout[-3000:]}"
    assert all(f"(SLURM job {i})" in done.stdout for i in ids.values())

    # sacct --completion reads the jobcomp/filetxt log: every job ran and completed under SLURM
    sacct = subprocess.run(
        ["sacct", "--completion", "-n", "-P", "-o", "JobID,State"],
        env=slurm_cluster["env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    states = dict(line.split("|")[:2] for line in sacct.split() if "|" in line)
    for stem, job_id in ids.items():
        assert states.get(str(job_id)) == "COMPLETED", (stem, job_id, sacct)

    for stem in STUDY1:
        assert _numbers(stem) == local[stem], stem
