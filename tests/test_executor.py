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
    distributed = pytest.importorskip("distributed")
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
