"""Independent trainings side by side in worker processes, one CPU thread each.

Small networks (study 1's flows) gain little from a second intra-op thread, so two
trainings side by side on one thread each finish sooner than one after another on two threads
(1.35× for study 1's members in ``benchmarks/bench_hernquist.py``). The trainings run on one
thread wherever they run (:func:`astrogen.threads.torch_threads`; some models' bits depend on the
thread count), so results do not depend on how many run at once. Workers are spawned, so a
script that starts them must guard its entry point with ``if __name__ == "__main__":``
(notebooks need nothing).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm


def worker_count() -> int:
    """How many one-thread workers a job may start: the threads declared for it
    (``$ASTROGEN_THREADS``, see :mod:`astrogen.resources`), else the cores this process may run
    on (its affinity mask where the OS has one)."""
    from astrogen import threads

    declared = threads.declared()
    if declared is not None:
        return declared
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_in_workers(
    fn: Callable[..., object],
    tasks: Sequence[tuple],
    workers: int,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    desc: str = "jobs",
    progress: bool = True,
) -> None:
    """Run ``fn(*task)`` for every task in ``workers`` spawned processes, one thread each.

    ``fn`` and ``initializer`` must be importable module-level functions; ``initargs`` reach
    every worker once, at its start (large tensors belong there rather than in the tasks, which
    would share them through a listener socket in a ``/tmp/pymp-*`` folder of the parent that
    outlives the pool). Results are not returned: the tasks store what they build. The first
    failure is raised here.
    """
    from astrogen import paths

    context = multiprocessing.get_context("spawn")
    locations = {name: getattr(paths, name) for name in _LOCATIONS}
    init = (os.getpid(), locations, initializer, initargs)
    with ProcessPoolExecutor(workers, context, _start_worker, init) as pool:
        futures = [pool.submit(fn, *task) for task in tasks]
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc,
                           disable=not progress):  # fmt: skip
            future.result()


# The parent's locations (:mod:`astrogen.paths`) reach the workers, so a relocated store (a
# test's temporary folder) is the one they read and write.
_LOCATIONS = ("ROOT", "DATA", "FIGURES", "NOTEBOOKS")


def _start_worker(
    parent: int, locations: dict, initializer: Callable[..., None] | None, initargs: tuple
) -> None:
    from astrogen import paths, threads

    for name, value in locations.items():
        setattr(paths, name, value)
    threads.limit(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _exit_with_parent(parent: int) -> None:
    """End this worker once the process that started it is gone (e.g. a killed notebook run):
    workers hold their own end of the task queue, so they would otherwise wait forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
