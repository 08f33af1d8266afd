"""Run independent jobs: local processes by default, a Dask cluster when given an address.

``run_jobs(fn, items)`` maps ``fn`` over ``items`` and returns the results in the order
of ``items``; ``iter_jobs(fn, items)`` yields ``(index, result)`` pairs as jobs finish,
so a caller can store each result at once (a killed run then loses only the jobs in
flight). With ``scheduler=None`` the jobs run in a local
:class:`concurrent.futures.ProcessPoolExecutor` (``workers=1`` runs them in this
process, which is what tests and debuggers want). With ``scheduler="tcp://host:port"``
(or a ``distributed.Client``) they run on that Dask ``distributed`` cluster.
``fn`` and the items must be picklable (a module-level function, plain data).

Clusters on a batch system (SLURM, PBS, SGE, LSF) are reached through dask-jobqueue,
which submits the Dask workers as batch jobs; potlab only needs the scheduler address::

    from dask_jobqueue import SLURMCluster        # pip install dask-jobqueue
    cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="02:00:00",
                           job_script_prologue=["export OMP_NUM_THREADS=1"])
    cluster.scale(jobs=32)                          # 32 single-core workers
    run_jobs(fn, items, scheduler=cluster.scheduler_address)
    # or from the shell: potlab label ... --scheduler tcp://<host>:<port>

(``PBSCluster`` takes the same arguments.) One thread per worker is what labelling
wants: tight-binding codes use OpenMP, and two threads on a busy core make a 10 ms
call take hundreds. Local workers get ``worker_env`` (e.g. ``{"OMP_NUM_THREADS": "1"}``)
set before the job runs; Dask workers should be started with it in their environment.

When a Dask worker dies, the scheduler reruns its unfinished jobs on another worker;
each job's result still reaches the caller exactly once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Self

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
    worker_env: dict[str, str] | None = None,
    start_method: str | None = None,
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
        worker_env: environment variables set in each local worker process before
            its first job (not in this process when ``workers=1``).
        start_method: multiprocessing start method of local workers ("fork",
            "forkserver", "spawn"; default: the platform's).

    Raises:
        The first exception raised by a job (after the others have been cancelled).
    """
    items = list(items)
    results: list[Any] = [None] * len(items)
    for i, value in iter_jobs(fn, items, scheduler=scheduler, workers=workers, desc=desc,
                              worker_env=worker_env, start_method=start_method):
        results[i] = value
    return results


def iter_jobs(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    desc: str | None = None,
    worker_env: dict[str, str] | None = None,
    start_method: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Like :func:`run_jobs`, but yield ``(index, result)`` as each job finishes (in
    completion order), so the caller can save results one by one."""
    items = list(items)
    if not items:
        return
    if scheduler is not None:
        yield from _iter_dask(fn, items, scheduler, desc)
        return
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if n == 1 or len(items) == 1:
        for i, x in enumerate(progress(items, desc=desc, total=len(items))):
            yield i, fn(x)
        return
    n = min(n, len(items))
    log.info("running %d jobs on %d local processes", len(items), n)
    context = multiprocessing.get_context(start_method) if start_method else None
    with ProcessPoolExecutor(max_workers=n, mp_context=context, initializer=_set_env,
                             initargs=(dict(worker_env or {}),)) as pool:
        futures = {pool.submit(fn, x): i for i, x in enumerate(items)}
        pending = set(futures)
        bar = progress(total=len(futures), desc=desc)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(done, key=futures.__getitem__):
                    yield futures[f], f.result()
                    bar.update(1)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        finally:
            bar.close()


def _set_env(env: dict[str, str]) -> None:
    os.environ.update(env)


def _iter_dask(fn: Callable[[Any], Any], items: list[Any], scheduler: Any, desc: str | None):
    try:
        from distributed import Client, as_completed
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
        index = {f.key: i for i, f in enumerate(futures)}
        bar = progress(total=len(futures), desc=desc)
        try:
            for f in as_completed(futures):
                yield index[f.key], f.result()
                bar.update(1)
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            bar.close()
    finally:
        if own:
            client.close()


class JobPool:
    """Jobs submitted one at a time and collected as they finish, for callers whose next
    jobs depend on the last ones (a study submits an MD run as soon as its model is
    trained). Local processes by default (``workers=1``: each job runs in this process when
    collected), a Dask cluster with ``scheduler``; the same rules as :func:`iter_jobs`.

    ::

        with JobPool(workers=2) as pool:
            pool.submit(fn, x, tag="a")
            tag, result = pool.next_done()
    """

    def __init__(self, *, scheduler: Any = None, workers: int | None = None,
                 worker_env: dict[str, str] | None = None, start_method: str | None = None):
        self.scheduler = scheduler
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.worker_env = dict(worker_env or {})
        self.start_method = start_method
        self._pool = None
        self._client = None
        self._own_client = False
        self._pending: dict[Any, Any] = {}  # future (or inline job) -> tag

    def __enter__(self) -> Self:
        if self.scheduler is not None:
            try:
                from distributed import Client
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("a Dask scheduler was given but 'distributed' is not "
                                  "installed: pip install 'dask[distributed]'") from exc
            self._own_client = not isinstance(self.scheduler, Client)
            self._client = Client(self.scheduler) if self._own_client else self.scheduler
        elif self.workers > 1:
            context = multiprocessing.get_context(self.start_method) if self.start_method else None
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                             initializer=_set_env, initargs=(self.worker_env,))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            if self._pending:
                self._client.cancel(list(self._pending))
            if self._own_client:
                self._client.close()
        self._pending.clear()

    @property
    def capacity(self) -> int:
        """Jobs worth keeping in flight: the local workers, or the cluster's worker threads."""
        if self._client is not None:
            info = self._client.scheduler_info()
            return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        return self.workers

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, fn: Callable[[Any], Any], item: Any, tag: Any = None) -> None:
        if self._client is not None:
            self._pending[self._client.submit(fn, item, pure=False)] = tag
        elif self._pool is not None:
            self._pending[self._pool.submit(fn, item)] = tag
        else:
            self._pending[_Inline(fn, item)] = tag

    def next_done(self) -> tuple[Any, Any]:
        """(tag, result) of a finished job (blocks until one finishes); an exception raised
        by the job is raised here."""
        if not self._pending:
            raise RuntimeError("JobPool.next_done: nothing submitted")
        if self._client is not None:
            from distributed import wait as dask_wait

            done, _ = dask_wait(list(self._pending), return_when="FIRST_COMPLETED")
            f = next(iter(done))
        elif self._pool is not None:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            f = next(iter(done))
        else:
            f = next(iter(self._pending))
        tag = self._pending.pop(f)
        return tag, f.result()


class _Inline:
    """A job run in this process when its result is asked for."""

    def __init__(self, fn, item):
        self.fn, self.item = fn, item

    def result(self):
        return self.fn(self.item)

    def cancel(self) -> None:
        pass
