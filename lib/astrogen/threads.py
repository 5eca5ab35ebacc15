"""Hold a job to the threads it was given, so concurrent jobs do not oversubscribe the cores.

The workflow exports ``ASTROGEN_THREADS`` (and ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, which OpenMP and BLAS read when they start) for every job, from the
threads declared in :mod:`astrogen.resources`. :func:`limit` applies the count to what is
already loaded: torch's intra-op pool, every OpenMP/BLAS pool (through threadpoolctl) and
scikit-learn (its OpenMP runtime, and joblib's CPU count for ``n_jobs=-1``). An unset ``ASTROGEN_THREADS`` leaves everything as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "ASTROGEN_THREADS"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", ENV)
_limiter = None  # the threadpoolctl limit, kept alive for the life of the process


def declared() -> int | None:
    """``$ASTROGEN_THREADS`` as a positive integer, ``None`` if unset or empty."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"${ENV}={raw!r}: expected a positive integer") from None
    if n < 1:
        raise ValueError(f"${ENV}={raw!r}: expected a positive integer")
    return n


def environment(n: int) -> dict[str, str]:
    """The variables a job of ``n`` threads is started with."""
    return dict.fromkeys(THREAD_VARIABLES, str(int(n)))


def limit(n: int | None = None) -> int | None:
    """Hold torch, OpenMP/BLAS and scikit-learn to ``n`` threads (default ``$ASTROGEN_THREADS``).

    Returns the count applied, or ``None`` when none was given or declared. Calling it again
    replaces the earlier limit.
    """
    global _limiter
    n = declared() if n is None else int(n)
    if n is None:
        return None
    if n < 1:
        raise ValueError(f"threads: expected a positive integer, got {n}")
    for name in THREAD_VARIABLES:  # for OpenMP/BLAS pools and processes started later
        os.environ[name] = str(n)
    os.environ["LOKY_MAX_CPU_COUNT"] = str(n)  # joblib's cpu_count(): scikit-learn's n_jobs=-1
    import sklearn  # noqa: F401  (loads scikit-learn's OpenMP runtime, so the limit reaches it)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    if _limiter is not None:
        _limiter.restore_original_limits()
    _limiter = threadpool_limits(limits=n)
    return n


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch's intra-op pool at ``n`` threads, then restore the count.

    Some models' bits depend on the thread count (``benchmarks/thread_determinism.py``; e.g. a
    NICE flow), so trainings that may run side by side in one-thread workers
    (:mod:`astrogen.workers`) train on one thread wherever they run, and their weights do not
    depend on how many run at once.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
