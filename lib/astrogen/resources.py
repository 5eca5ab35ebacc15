"""What each notebook asks of the machine that runs it: threads, memory, GPU, time limit.

The workflow (``workflow/Snakefile``) reads this table for every job: ``threads`` become the
job's cores (and its ``OMP_NUM_THREADS`` / ``ASTROGEN_THREADS``, which
:func:`astrogen.threads.limit` holds torch, BLAS and scikit-learn to), ``mem_mb`` and
``minutes`` become the SLURM job's memory and time limit, ``gpus`` the GPUs a ``full`` job
requests (other profiles run on the CPU, see :func:`astrogen.notebook.begin`).

Times are generous upper limits for one job under each profile (measured on a 2-core machine:
study 1 takes about 11 min at ``default``, notebook 53 48 min), not expected durations.
This module imports nothing heavy: the workflow reads it before any job starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Time limits of ``smoke`` and ``full`` relative to ``default`` when a notebook gives none.
_SMOKE_MINUTES = 15


@dataclass(frozen=True)
class Resources:
    """One notebook's job: ``threads`` cores, ``mem_mb`` MiB, ``minutes`` under ``default``."""

    threads: int
    mem_mb: int
    minutes: int
    gpus: int = 0  # requested under the ``full`` profile only
    full_minutes: int | None = None  # ``full`` time limit; default 4 × ``minutes``
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threads < 1 or self.mem_mb < 1 or self.minutes < 1 or self.gpus < 0:
            raise ValueError(f"resources must be positive: {self}")

    def for_profile(self, profile: str) -> dict[str, int]:
        """Snakemake resources of the job under ``profile``: mem_mb, runtime [min], gpu."""
        if profile == "smoke":
            minutes = min(self.minutes, _SMOKE_MINUTES)
        elif profile == "full":
            minutes = self.full_minutes or 4 * self.minutes
        else:
            minutes = self.minutes
        out = {"mem_mb": self.mem_mb, "runtime": minutes}
        if profile == "full" and self.gpus:
            out["gpu"] = self.gpus
        return out


R = Resources
RESOURCES: dict[str, Resources] = {
    # study 1: Hernquist distribution functions
    "11_hernquist_data": R(threads=1, mem_mb=2000, minutes=20),
    # members train side by side, one thread each (astrogen.workers)
    "12_hernquist_flows": R(threads=2, mem_mb=3000, minutes=60, gpus=1),
    "13_hernquist_accelerations": R(threads=1, mem_mb=3000, minutes=30),
    # study 2: cluster posteriors
    "21_clusters_simulation": R(threads=1, mem_mb=2000, minutes=20),
    "22_clusters_posteriors": R(threads=1, mem_mb=4000, minutes=60, gpus=1),
    "23_clusters_sensitivity": R(threads=1, mem_mb=4000, minutes=60),
    "24_clusters_maps": R(threads=1, mem_mb=3000, minutes=30),
    # study 3: Balrog injections and their emulator
    "31_balrog_injections": R(threads=1, mem_mb=3000, minutes=30),
    "32_balrog_training": R(threads=1, mem_mb=4000, minutes=60, gpus=1),
    "33_balrog_evaluation": R(threads=1, mem_mb=4000, minutes=40),
    # study 4: anomaly detection on galaxy images
    "41_anomaly_sky_and_suites": R(threads=1, mem_mb=4000, minutes=30),
    "42_anomaly_training": R(threads=2, mem_mb=6000, minutes=90, gpus=1),
    "43_anomaly_rating": R(threads=1, mem_mb=6000, minutes=60),
    "44_anomaly_detectability": R(threads=1, mem_mb=6000, minutes=60),
    "45_anomaly_scores": R(threads=1, mem_mb=6000, minutes=60),
    # study 5: galaxy forge, an autoencoder and flows on its latent space
    "51_galforge_galaxies": R(threads=1, mem_mb=4000, minutes=30),
    "52_galforge_autoencoder": R(threads=1, mem_mb=6000, minutes=60, gpus=1),
    "53_galforge_flows": R(threads=2, mem_mb=6000, minutes=180, gpus=1),
    "54_galforge_evaluation": R(threads=1, mem_mb=6000, minutes=60),
}


def resources(notebook: str) -> Resources:
    """The declared resources of ``notebook``; a KeyError names the notebook without one."""
    try:
        return RESOURCES[notebook]
    except KeyError:
        raise KeyError(
            f"{notebook}: no resources declared in astrogen.resources.RESOURCES"
        ) from None
