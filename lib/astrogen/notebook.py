"""The frame every notebook opens and closes with.

A notebook's ``parameters`` cell (papermill's, plain JSON types) holds only::

    profile = None  # None: $ASTROGEN_PROFILE or "default"
    seed = 0
    overrides = {}  # dotted configuration fields, e.g. {"flow.epochs": 5}

and its first code cell calls ``run = begin(NOTEBOOK, profile, seed, overrides)``, which resolves
the study's typed configuration (``run.cfg``). With ``data.source`` set (the user's own data),
the run records as ``<notebook><OWN_DATA_SUFFIX>`` and asserts that entry's targets. Its last cells call ``run.finish(metrics)``, which
records the metrics with their provenance, shows target / value / pass for every target of the
profile and asserts them, and ``run.conclude(text)``, which states the conclusion in numbers taken
from the metrics.
"""

from __future__ import annotations

import importlib
import math
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from astrogen import config, paths, provenance, store, threads

STUDIES = {"1": "hernquist", "2": "clusters", "3": "balrog", "4": "anomaly", "5": "galforge"}
# Keys of a metrics file that describe the run rather than measure anything.
RUN_KEYS = ("profile", "seed", "device", "wall_s", "machine", "cpu_threads", "provenance")


def study_of(notebook: str) -> str:
    """The study a numbered notebook (``12_hernquist_flows``) belongs to."""
    try:
        return STUDIES[notebook[0]]
    except (KeyError, IndexError):
        raise ValueError(f"{notebook!r} is not a numbered notebook of a study {STUDIES}") from None


def configuration(study: str):
    """The study's configuration module: ``Config``, ``PROFILES``, ``TARGETS``."""
    return importlib.import_module(f"astrogen.studies.{study}.configuration")


def current_profile(profile: str | None = None) -> str:
    """``profile`` if given, else ``$ASTROGEN_PROFILE``, else ``"default"``; validated."""
    profile = profile or os.environ.get("ASTROGEN_PROFILE", "default")
    if profile not in config.PROFILES:
        raise config.ConfigError(f"unknown profile {profile!r}; choose one of {config.PROFILES}")
    return profile


def resolve(notebook: str, profile: str | None = None, overrides: Mapping | None = None) -> Any:
    """The typed configuration a notebook runs with."""
    module = configuration(study_of(notebook))
    return config.resolve(module.Config, current_profile(profile), module.PROFILES, overrides)


def targets(notebook: str, profile: str) -> tuple[config.Target, ...]:
    """The targets a notebook asserts (or reports) under ``profile``."""
    module = configuration(study_of(notebook))
    return config.targets_for(module.TARGETS.get(notebook, ()), profile)


class TargetError(AssertionError):
    """One or more targets failed; the message names each metric, its value and bound."""


@dataclass
class Run:
    """One execution of a notebook: its configuration, device and clock."""

    notebook: str
    profile: str
    seed: int
    cfg: Any
    device: str
    overrides: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def study(self) -> str:
        return study_of(self.notebook)

    def key(self, name: str, /, **extra: Any) -> dict[str, Any]:
        """The cache key of the study's artifact ``name`` under this configuration and seed."""
        artifact = configuration(self.study).ARTIFACTS[name]
        return config.artifact_key(self.cfg, name, artifact, seed=self.seed, **extra)

    def target(self, metric: str) -> config.Target | None:
        """The target on ``metric`` under this profile (for drawing bounds in figures)."""
        found = [t for t in targets(self.notebook, self.profile) if t.metric == metric]
        return found[0] if found else None

    def provenance(self) -> dict:
        return provenance.record(
            profile=self.profile,
            seed=self.seed,
            config_hash=config.config_hash(self.cfg),
            overrides=self.overrides,
        )

    def finish(self, metrics: Mapping[str, float]) -> pd.DataFrame:
        """Record ``metrics``, show every target of the profile and assert them.

        Returns:
            The table target / value / bound / pass (the notebook's displayed output).

        Raises:
            TargetError: after the metrics are written, naming each failed metric.
            KeyError: for a target whose metric the notebook did not record.
        """
        record = record_metrics(
            self.notebook,
            metrics,
            profile=self.profile,
            seed=self.seed,
            device=self.device,
            wall_s=time.perf_counter() - self.started,
            provenance=self.provenance(),
        )
        rows, failures = [], []
        for target in targets(self.notebook, self.profile):
            if target.metric not in record:
                raise KeyError(f"{self.notebook}: target metric {target.metric!r} not recorded")
            value = record[target.metric]
            asserted = target.asserted_in(self.profile)
            has_bound = target.lower is not None or target.upper is not None
            ok = target.passes(value)
            verdict = "yes" if ok else "NO"
            if not asserted:
                verdict = f"{verdict} (not asserted)" if has_bound else "reported"
            rows.append(
                {
                    "metric": target.metric,
                    "value": value,
                    "target": target.describe(),
                    "pass": verdict,
                }
            )
            if asserted and not ok:
                failures.append(f"{target.metric} = {value:.4g}, target {target.describe()}")
        table = pd.DataFrame(rows, columns=["metric", "value", "target", "pass"])
        _display(table)
        if failures:
            raise TargetError(f"{self.notebook}: targets failed:\n  " + "\n  ".join(failures))
        return table

    def conclude(self, text: str) -> None:
        """Show the notebook's conclusion (Markdown, with numbers from its metrics)."""
        try:
            from IPython.display import Markdown, display

            display(Markdown(text))
        except ImportError:  # outside IPython
            print(text)


def begin(
    notebook: str,
    profile: str | None = None,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> Run:
    """Resolve the notebook's configuration and set the run up (style, threads, device).

    ``full`` runs on CUDA when present; every other profile on the CPU, so its numbers do not
    depend on the machine's GPU.
    """
    from astrogen.plots import use_style

    profile = current_profile(profile)
    threads.limit()  # the job's declared threads ($ASTROGEN_THREADS, set by the workflow)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise config.ConfigError(f"seed (type int): expected a non-negative integer, got {seed!r}")
    cfg = resolve(notebook, profile, overrides)
    if getattr(getattr(cfg, "data", None), "source", None) is not None:
        # the user's own data: metrics and targets of their own (no simulator truth to assert)
        module = configuration(study_of(notebook))
        suffix = getattr(module, "own_data_suffix", None)
        notebook += suffix(cfg) if suffix else module.OWN_DATA_SUFFIX
    device = "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"
    use_style()
    return Run(notebook, profile, seed, cfg, device, dict(overrides or {}))


def record_metrics(
    notebook: str,
    metrics: Mapping[str, float],
    *,
    profile: str,
    seed: int,
    device: str,
    wall_s: float,
    provenance: Mapping[str, Any] | None = None,
) -> dict:
    """Write ``data/metrics/<profile>/<notebook>.json`` (name → number, plus run keys)."""
    record: dict[str, Any] = {k: _finite_number(k, v) for k, v in metrics.items()}
    record.update(
        profile=profile,
        seed=seed,
        device=device,
        wall_s=round(float(wall_s), 2),
        machine=platform.node() or "unknown",
        cpu_threads=os.cpu_count(),
        provenance=dict(provenance or {}),
    )
    store.write_json(paths.metrics_dir(profile) / f"{notebook}.json", record)
    return record


def _finite_number(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"metric {name!r} is not finite: {value}")
    return value


def _display(table: pd.DataFrame) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(table.to_string(index=False))
        return
    if get_ipython() is None:
        print(table.to_string(index=False))
    else:
        display(table)
