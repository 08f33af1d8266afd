"""Running a protocol: one temperature and repeat -> one run directory (:func:`run_md`),
every temperature x repeat (:func:`run_protocol`), many replicas of one potential in one
model call per step (:func:`potlab.md.batched.run_batched`). All go through the one run
loop of :mod:`potlab.md.loop`, whichever engine (``protocol.engine``: ase, lammps,
batched) advances the atoms, so every engine writes the same files (``trajectory.extxyz``,
``trajectory.traj``, ``md_log.csv``, ``protocol.json``, ``checkpoint.pkl``,
``result.json``), resumes a killed run from its last flushed block with the same
positions, momenta, step, thermostat variables and RNG state, and stops on a monitor.

A rerun into a directory made with other settings (timestep, steps, ensemble, monitors,
structure, calculator, temperature, seed, ...) raises :class:`ProtocolError` naming the
keys; ``resume=False`` starts over. Units: fs, K, eV, A.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from potlab.md.engine import MDResult, Replica
from potlab.md.identity import calculator_fingerprint
from potlab.md.loop import RunLoop, build_monitors
from potlab.md.monitors import Monitor
from potlab.md.protocol import MDProtocol, run_dir_name

log = logging.getLogger(__name__)


def _engine(calculator: Calculator, protocol: MDProtocol):
    if protocol.skin_A > 0:
        from potlab.potential.calculator import GraphModelCalculator

        if isinstance(calculator, GraphModelCalculator):
            calculator = calculator.with_skin(protocol.skin_A)
        else:
            log.warning("skin_A: %s searches its own neighbours; the skin applies to potlab "
                        "potentials only", type(calculator).__name__)
    if protocol.engine == "lammps":
        from potlab.md.lammps import LammpsEngine

        return LammpsEngine(calculator, protocol)
    from potlab.md.ase_engine import ASEEngine

    return ASEEngine(calculator, protocol)


def _potential_of(calculator):
    pot = getattr(calculator, "potential", None)
    if pot is None and hasattr(calculator, "graph") and hasattr(calculator, "cutoff"):
        pot = calculator  # a Potential given directly
    if pot is None:
        raise ValueError("engine batched needs a potlab potential (potlab.load(path) or its "
                         f"calculator), not {type(calculator).__name__}")
    return pot


def batchable(calculator) -> bool:
    """Whether engine batched can run ``calculator`` (a potlab potential or its calculator)."""
    try:
        _potential_of(calculator)
    except ValueError:
        return False
    return True


def run_md(atoms: Atoms, calculator: Calculator, protocol: MDProtocol, out_dir: str | Path,
           temperature_K: float | None = None, seed: int | None = None,
           monitors: list[Monitor] | None = None, resume: bool = True,
           committee=None) -> MDResult:
    """Run ``protocol`` on ``atoms`` with ``calculator`` at ``temperature_K`` (default: the
    protocol's first) with ``seed`` (default: the protocol's) into ``out_dir``.

    With ``resume`` a checkpoint there is continued (a finished run returns at once) after
    checking that it was made with the same settings; without it old outputs are removed
    first. Live ``monitors`` (default: from the protocol) stop the run when one fires.
    ``committee`` (a Committee) overrides ``protocol.uncertainty.committee``."""
    rep = Replica(atoms, out_dir, temperature_K, seed, monitors)
    if protocol.engine == "batched":
        from potlab.md.batched import run_batched

        return run_batched([rep], _potential_of(calculator), protocol, resume=resume,
                           committee=committee)[0]
    T = protocol.temperatures_K[0] if temperature_K is None else temperature_K
    loop = RunLoop(_engine(calculator, protocol), protocol, calculator_fingerprint(calculator),
                   resume=resume, committee=committee, desc=f"MD {T:g} K")
    return loop.run([rep])[0]


def protocol_replicas(atoms: Atoms, protocol: MDProtocol, out_dir: str | Path) -> list[Replica]:
    """Every temperature x repeat of ``protocol`` as replicas in ``out_dir/T{temp}K_r{repeat}``
    with seed ``protocol.seed + 1000 * temperature index + repeat``."""
    reps = []
    for i, temp in enumerate(protocol.temperatures_K):
        for r in range(protocol.repeats):
            reps.append(Replica(atoms, Path(out_dir) / run_dir_name(temp, r), float(temp),
                                protocol.seed + 1000 * i + r))
    return reps


def run_protocol(atoms: Atoms, calculator: Calculator | None, protocol: MDProtocol,
                 out_dir: str | Path, resume: bool = True, committee=None, *,
                 make_calculator: Callable[[Atoms], Calculator] | None = None,
                 workers: int | None = 1, scheduler: Any = None, desc: str | None = None
                 ) -> list[MDResult]:
    """Every temperature x repeat of ``protocol``, each in ``out_dir/T{temp}K_r{repeat}`` with
    its own seed (``protocol.seed + 1000 * temperature index + repeat``). Engine batched runs
    them all together (one model call per step), the others one after another; or, given
    ``make_calculator`` (picklable, atoms -> calculator: a reference method's
    ``calculator``), each with a calculator of its own on ``workers`` processes or a Dask
    ``scheduler`` (None: the usable CPUs; one: in this process), each limited to ``POTLAB_LABEL_THREADS``
    threads (default 1), ``desc`` naming the progress bar. Either way a run is the one
    :func:`run_md` makes of its replica: the same files, the same resume."""
    reps = protocol_replicas(atoms, protocol, out_dir)
    if protocol.engine == "batched":
        from potlab.md.batched import run_batched

        return run_batched(reps, _potential_of(calculator), protocol, resume=resume,
                           committee=committee)
    if make_calculator is not None and committee is None:
        from potlab.executor import run_jobs

        return run_jobs(_run_replica, [(rep, make_calculator, protocol, resume) for rep in reps],
                        scheduler=scheduler,
                        workers=None if workers is None else max(1, min(workers, len(reps))),
                        desc=desc or f"MD x {len(reps)}", worker_env={"OMP_NUM_THREADS": "1"})
    return [run_md(rep.atoms, calculator, protocol, rep.out_dir, rep.temperature_K, rep.seed,
                   resume=resume, committee=committee) for rep in reps]


def _run_replica(job: tuple[Replica, Callable[[Atoms], Calculator], MDProtocol, bool]) -> MDResult:
    """One replica in a worker, with a calculator built there (module level: picklable)."""
    from threadpoolctl import threadpool_limits

    rep, make_calculator, protocol, resume = job
    with threadpool_limits(limits=int(os.environ.get("POTLAB_LABEL_THREADS", "1"))):
        return run_md(rep.atoms, make_calculator(rep.atoms), protocol, rep.out_dir,
                      rep.temperature_K, rep.seed, resume=resume)


__all__ = ["MDResult", "batchable", "build_monitors", "protocol_replicas", "run_md", "run_protocol"]
