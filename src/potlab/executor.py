"""Run independent jobs: local processes by default, a Dask cluster when given an address.

``run_jobs(fn, items)`` maps ``fn`` over ``items`` and returns the results in the order
of ``items``. With ``scheduler=None`` the jobs run in a local
:class:`concurrent.futures.ProcessPoolExecutor` (``workers=1`` runs them in this
process, which is what tests and debuggers want). With ``scheduler="tcp://host:port"``
(or a ``distributed.Client``) they run on that Dask ``distributed`` cluster; a
dask-jobqueue cluster on SLURM/PBS is reached the same way through its address.
``fn`` and the items must be picklable (a module-level function, plain data).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from potlab.progress import progress

log = logging.getLogger(__name__)


def default_workers() -> int:
    """Worker processes used when none is given: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_jobs(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    desc: str | None = None,
) -> list[Any]:
    """Apply ``fn`` to every item, in parallel, and return the results in item order.

    Args:
        fn: a picklable callable taking one item.
        items: the jobs' inputs.
        scheduler: None for local processes; a Dask scheduler address
            (``"tcp://127.0.0.1:8786"``) or a ``distributed.Client`` for a cluster.
        workers: local worker processes (default: usable CPUs; 1 runs in-process).
            Ignored with a scheduler: the cluster decides.
        desc: label of the progress bar.

    Raises:
        The first exception raised by a job (after the others have been cancelled).
    """
    items = list(items)
    if not items:
        return []
    if scheduler is not None:
        return _run_dask(fn, items, scheduler, desc)
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if n == 1 or len(items) == 1:
        return [fn(x) for x in progress(items, desc=desc, total=len(items))]
    n = min(n, len(items))
    log.info("running %d jobs on %d local processes", len(items), n)
    with ProcessPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in progress(futures, desc=desc, total=len(futures))]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_dask(fn: Callable[[Any], Any], items: list[Any], scheduler: Any, desc: str | None):
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "a Dask scheduler was given but 'distributed' is not installed: "
            "pip install 'dask[distributed]'"
        ) from exc
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        log.info("running %d jobs on Dask scheduler %s", len(items), client.scheduler.address)
        futures = client.map(fn, items, pure=False)
        results = []
        for f in progress(futures, desc=desc, total=len(futures)):
            results.append(f.result())
        return results
    finally:
        if own:
            client.close()
