"""Labelling on a real Dask LocalCluster: same store as local processes; a worker killed in
the middle of a batch loses no label and labels nothing twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from contextlib import closing

import distributed
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from potlab.reference import Labeller, LabelStore


def _benzene_clusters(n: int, seed: int = 0) -> list[Atoms]:
    """``n`` rattled clusters of three benzene molecules (36 atoms), 4 A apart."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cluster = Atoms()
        for k in range(3):
            b = molecule("C6H6")
            b.positions += [0.0, 0.0, 4.0 * k]
            cluster += b
        cluster.positions += rng.uniform(-0.05, 0.05, cluster.positions.shape)
        out.append(cluster)
    return out


def _rows(path) -> dict[str, float]:
    store = LabelStore(path)
    out = {}
    for _atoms, rec in store.records():
        assert rec["structure_hash"] not in out, "a structure was stored twice"
        out[rec["structure_hash"]] = rec["energy"]
    return out


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield c


def test_dask_and_local_give_identical_stores(cluster, tmp_path):
    frames = _benzene_clusters(6)
    local = Labeller("gfn2-xtb", store=tmp_path / "local.db", workers=2).label(frames)
    dask = Labeller("gfn2-xtb", store=tmp_path / "dask.db",
                    scheduler=cluster.scheduler_address).label(frames)
    assert len(local.labelled) == len(dask.labelled) == 6 and not dask.failures
    a, b = _rows(tmp_path / "local.db"), _rows(tmp_path / "dask.db")
    assert a.keys() == b.keys() and len(a) == 6
    for h in a:
        assert a[h] == pytest.approx(b[h], abs=1e-9)
    for x, y in zip(local.labelled, dask.labelled):
        np.testing.assert_allclose(x.arrays["REF_forces"], y.arrays["REF_forces"], atol=1e-9)


def _stored_rows(path) -> int:
    """Rows in the store, read-only; 0 while the writer is still creating it or holds the lock
    (probing through ASE could initialise the file under the writer)."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)) as con:
            return con.execute("SELECT count(*) FROM systems").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killing_a_worker_mid_batch_loses_no_label(cluster, tmp_path):
    frames = _benzene_clusters(30, seed=1)
    path = tmp_path / "kill.db"
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        victim = min(pids.values())
        killed = threading.Event()

        def kill_when_started():
            deadline = time.time() + 120
            while time.time() < deadline:
                started = path.exists() and _stored_rows(path) >= 3
                if started:
                    os.kill(victim, signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_started, daemon=True)
        killer.start()
        res = Labeller("gfn2-xtb", store=path, scheduler=client).label(frames)
        killer.join()
        assert killed.is_set(), "the batch finished before a worker could be killed"
        client.wait_for_workers(2, timeout=60)
        assert victim not in client.run(os.getpid).values()
    assert len(res.labelled) == 30 and not res.failures and res.computed == 30
    rows = _rows(path)
    assert len(rows) == 30
    again = Labeller("gfn2-xtb", store=path, workers=1).label(frames)
    assert again.cached == 30 and again.computed == 0
