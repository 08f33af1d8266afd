"""potlab.executor: local processes and a real Dask LocalCluster give the same results."""

from __future__ import annotations

import operator
from functools import partial

import pandas as pd
import pytest

from potlab.executor import run_jobs


def _square(x):
    return x * x


def _boom(x):
    if x == 3:
        raise ValueError("job 3 failed")
    return x


def test_local_processes_keep_order():
    items = list(range(20))
    assert run_jobs(_square, items, workers=2) == [x * x for x in items]
    assert run_jobs(_square, items, workers=1) == [x * x for x in items]
    assert run_jobs(partial(operator.add, 10), [1, 2], workers=2) == [11, 12]
    assert run_jobs(_square, []) == []


def test_errors_propagate():
    with pytest.raises(ValueError, match="job 3 failed"):
        run_jobs(_boom, range(6), workers=2)


def test_dask_local_cluster_matches_local_enumeration(tmp_path):
    import distributed

    from potlab.space.enumeration import enumerate_allowed

    local = enumerate_allowed(2, tmp_path / "local.parquet", sets_per_chunk=700, workers=2)
    assert local["rows"] == 13464
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 host="127.0.0.1", dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert run_jobs(_square, range(10), scheduler=client) == [x * x for x in range(10)]
        dask = enumerate_allowed(2, tmp_path / "dask.parquet", sets_per_chunk=700,
                                 scheduler=cluster.scheduler_address)
    a = pd.read_parquet(tmp_path / "local.parquet")
    b = pd.read_parquet(tmp_path / "dask.parquet")
    assert dask["rows"] == local["rows"] == len(a)
    pd.testing.assert_frame_equal(a, b)
    assert a.formula.is_unique and {"NaCl", "ZnO", "Zn2O", "Fe2O3"} <= set(a.formula)
    assert set(a.columns) == {"formula", "element_1", "element_2", "n_1", "n_2"}


def _env(name):
    import os

    return os.environ.get(name)


def _sleep_then(x):
    import time

    time.sleep(0.3 if x == 0 else 0.0)
    return x


def _wait_for_release(job):
    """Job 0 blocks until the file ``release`` exists (written by the caller once it has
    received every other result); the others return at once."""
    import time
    from pathlib import Path

    i, release = job
    deadline = time.monotonic() + 120
    while i == 0 and not Path(release).exists():
        if time.monotonic() > deadline:
            return "never released"
        time.sleep(0.01)
    return i


def test_iter_jobs_yields_each_result_once_as_it_finishes(tmp_path):
    """No clock: job 0 cannot finish before the caller has seen jobs 1-5, so getting them
    first proves that results arrive as they finish, not in submission order."""
    from potlab.executor import iter_jobs

    release = tmp_path / "release"
    got = []
    for i, value in iter_jobs(_wait_for_release, [(k, str(release)) for k in range(6)], workers=2):
        got.append((i, value))
        if len(got) == 5:
            release.write_text("")
    assert sorted(got[:5]) == [(i, i) for i in range(1, 6)]
    assert got[5] == (0, 0)
    assert list(iter_jobs(_square, [3, 4], workers=1)) == [(0, 9), (1, 16)]


def test_worker_env_reaches_local_workers():
    out = run_jobs(_env, ["POTLAB_TEST_ENV"] * 2, workers=2,
                   worker_env={"POTLAB_TEST_ENV": "one"}, start_method="forkserver")
    assert out == ["one", "one"]


def test_dask_iter_jobs_survives_a_killed_worker():
    import os
    import signal

    import distributed

    from potlab.executor import iter_jobs

    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 host="127.0.0.1", dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        victim = min(client.run(os.getpid).values())
        seen = []
        for i, value in iter_jobs(_sleep_then, [1] * 40 + [0] * 4, scheduler=client):
            seen.append(i)
            if len(seen) == 2:
                os.kill(victim, signal.SIGKILL)
            assert value in (0, 1)
    assert sorted(seen) == list(range(44))  # every job's result once, none lost
