"""Shared timing helper for the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def rate(fn: Callable[[], object], count: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` items per second of ``fn()``, which processes ``count`` items."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return count / best
