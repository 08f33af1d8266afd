"""Labelling: structures in, labelled structures and failure records out.

``Labeller(method, store=...).label(structures)`` returns a :class:`LabelResult`.
A structure the method cannot label (atoms closer than ``min_distance``, checked before
any call; SCF not converged; an exception; NaN or inf in the results) becomes a
:class:`Failure` with its reason; it never aborts the batch. Every result, success or
failure, goes to the :class:`~potlab.reference.store.LabelStore` as soon as it arrives,
keyed by structure hash and method key: labelling a stored structure again costs no call,
failures are not retried unless ``retry_failures``, and a killed run resumes where it
stopped. The jobs go through :func:`potlab.executor.iter_jobs` (local processes or Dask).

A method that cannot be built (a missing package, a ``module:Class`` that does not import)
is not a failure of any structure: :meth:`Labeller.label` checks the method first and raises
:class:`~potlab.reference.methods.MethodUnavailable`, nothing is stored, and records of that
kind left by an older potlab are recomputed instead of served.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from potlab.executor import iter_jobs
from potlab.quiet import third_party_output
from potlab.reference.hashing import structure_hash
from potlab.reference.methods import Method, MethodUnavailable, get_method, was_unavailable
from potlab.reference.store import LabelStore, labelled_atoms

log = logging.getLogger(__name__)

MIN_DISTANCE = 0.5  # Angstrom: closer pairs are not sent to the method


@dataclass
class Failure:
    """A structure that could not be labelled: its 0-based ``index`` in the batch, the
    ``structure``, a human-readable ``reason`` and the exception type name."""

    index: int
    structure: Atoms
    reason: str
    error_type: str


@dataclass
class LabelResult:
    """Labelled structures (input order, failures left out), failure records, and how
    many labels came from the store (``cached``) or were computed (``computed``)."""

    labelled: list[Atoms] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    cached: int = 0
    computed: int = 0

    def summary(self) -> str:
        return f"labelled={len(self.labelled)} failed={len(self.failures)} cached={self.cached}"


def closest_pair(atoms: Atoms, cutoff: float) -> float | None:
    """The shortest interatomic distance (A, minimum image) if below ``cutoff``, else None."""
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2:
        return None
    d = neighbor_list("d", atoms, cutoff, self_interaction=False)
    return float(d.min()) if len(d) else None


def label_one(job: tuple[Method, Atoms, float]) -> dict[str, Any]:
    """Label one structure: ``job = (method, atoms, min_distance)``. Returns a record
    (plain data) with ``ok``, ``energy`` (eV), ``forces`` (eV/A), ``stress`` (eV/A^3,
    periodic cells only), ``reason``, ``error_type``, ``wall_time`` (s) and the keys.
    Never raises for a method's failure."""
    method, atoms, min_distance = job
    charge, spin = method.charge_spin(atoms)
    rec: dict[str, Any] = {
        "structure_hash": structure_hash(atoms, charge, spin), "method": method.name,
        "method_key": method.key, "version": method.version(), "settings": method.settings,
        "charge": charge, "spin": spin, "ok": False, "reason": "", "error_type": "",
        "wall_time": 0.0, "energy": None, "forces": None, "stress": None,
    }
    close = closest_pair(atoms, min_distance)
    if close is not None:
        rec.update(reason=f"atoms too close: {close:.3f} A < {min_distance} A",
                   error_type="AtomsTooClose")
        return rec
    start = time.perf_counter()
    try:
        with third_party_output():  # CHGNet & co. print and warn; keep it in the debug log
            rec.update(_compute(method, atoms))
    except (MethodUnavailable, ImportError) as exc:  # the method, not this structure
        rec.update(reason=str(exc) or type(exc).__name__, error_type="MethodUnavailable")
    except Exception as exc:  # noqa: BLE001 - a method's failure is data, not a crash
        rec.update(reason=str(exc) or type(exc).__name__, error_type=type(exc).__name__)
    rec["wall_time"] = time.perf_counter() - start
    return rec


def _compute(method: Method, atoms: Atoms) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    work = atoms.copy()
    work.calc = method.calculator(work)  # imports the method's library first
    with threadpool_limits(limits=int(os.environ.get("POTLAB_LABEL_THREADS", "1"))):
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces(), dtype=float)
        stress = np.array(work.get_stress(voigt=True), dtype=float) if atoms.pbc.all() else None
    values = [energy, forces] + ([] if stress is None else [stress])
    if not all(np.all(np.isfinite(v)) for v in values):
        return {"ok": False, "reason": "non-finite energy, forces or stress",
                "error_type": "NonFinite"}
    return {"ok": True, "energy": energy, "forces": forces, "stress": stress}


class Labeller:
    """Label structures with one reference method, through a store and an executor.

    Args:
        method: a :class:`Method` or a method name (``gfn2-xtb``, ``chgnet``,
            ``module:Class``...).
        settings: method settings when ``method`` is a name.
        store: a :class:`LabelStore` or a path to its SQLite file; None keeps no cache.
        scheduler: Dask scheduler address or ``distributed.Client``; None for local processes.
        workers: local worker processes (default: usable CPUs; 1 runs in this process).
        min_distance: pairs closer than this (A) are failures without a call.
        retry_failures: recompute structures whose stored record is a failure.
    """

    def __init__(self, method: Method | str, settings: dict | None = None, *,
                 store: LabelStore | str | os.PathLike[str] | None = None,
                 scheduler: Any = None, workers: int | None = None,
                 min_distance: float = MIN_DISTANCE, retry_failures: bool = False) -> None:
        self.method = method if isinstance(method, Method) else get_method(method, settings)
        self.store = store if isinstance(store, LabelStore) or store is None else LabelStore(store)
        self.scheduler = scheduler
        self.workers = workers
        self.min_distance = float(min_distance)
        self.retry_failures = retry_failures

    def label(self, structures: Sequence[Atoms]) -> LabelResult:
        """Label ``structures`` (each an ``ase.Atoms``); see the module docstring."""
        structures = list(structures)
        hashes = [structure_hash(a, *self.method.charge_spin(a)) for a in structures]
        known = self.store.lookup(self.method.key) if self.store is not None else {}
        records: dict[str, dict[str, Any]] = {}
        todo: dict[str, int] = {}  # hash -> first index needing a call
        cached = 0
        stale: set[str] = set()  # stored "method could not be built" records: recompute
        for i, h in enumerate(hashes):
            rec = known.get(h)
            if rec is not None and not rec["ok"] and was_unavailable(rec):
                stale.add(h)
                rec = None
            if rec is not None and (rec["ok"] or not self.retry_failures):
                records[h] = rec
                cached += 1
            elif h not in todo:
                todo[h] = i
        order = list(todo.values())
        if order:
            self.method.check()  # MethodUnavailable: bad input, before any call or store write
            log.info("labelling %d structures with %s (%d cached)", len(order),
                     self.method.name, cached)
        jobs = [(self.method, structures[i], self.min_distance) for i in order]
        results = iter_jobs(label_one, jobs, scheduler=self.scheduler, workers=self.workers,
                            desc=f"label {self.method.name}",
                            worker_env={"OMP_NUM_THREADS": "1"}, start_method="forkserver")
        for j, rec in results:
            if rec["error_type"] == "MethodUnavailable":  # e.g. missing on a Dask worker
                results.close()
                raise MethodUnavailable(f"{rec['reason']} (on the worker that ran it)")
            records[rec["structure_hash"]] = rec
            if self.store is not None:
                h = rec["structure_hash"]
                self.store.put(structures[order[j]], rec, replace=self.retry_failures or h in stale)
        result = LabelResult(cached=cached, computed=len(order))
        for i, (atoms, h) in enumerate(zip(structures, hashes)):
            rec = records[h]
            if rec["ok"]:
                result.labelled.append(labelled_atoms(atoms, rec))
            else:
                result.failures.append(Failure(i, atoms, rec["reason"], rec["error_type"]))
        return result


def label(structures: Sequence[Atoms], method: Method | str, settings: dict | None = None,
          **kwargs: Any) -> LabelResult:
    """Label ``structures`` with ``method``: shorthand for ``Labeller(...).label(...)``."""
    return Labeller(method, settings, **kwargs).label(structures)
