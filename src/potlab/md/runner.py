"""The MD runner: one protocol, one temperature, one repeat -> one run directory with
``trajectory.extxyz``, ``trajectory.traj``, ``md_log.csv`` (``steered_log.csv`` for steered
MD), ``checkpoint.pkl`` and, when done, ``result.json``. A killed run resumes from its last
flushed block with the same positions, momenta, step, thermostat variables and RNG state.

:func:`run_protocol` runs every temperature and repeat, each in ``T{temp}K_r{repeat}``.
Units: fs, K, eV, A.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.md.velocitydistribution import Stationary

try:  # ASE >= 3.28
    from ase.md.velocitydistribution import thermalize_momenta as _thermalize
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as _thermalize

from potlab.atomic import write_text_atomic
from potlab.md.ensembles import dynamics_state, make_dynamics, restore_dynamics_state
from potlab.md.monitors import (
    BondMonitor,
    DensityMonitor,
    FiniteMonitor,
    FusionMonitor,
    Monitor,
    RDFMonitor,
    StabilityResult,
    TemperatureMonitor,
)
from potlab.md.protocol import MDProtocol, Monitors, run_dir_name
from potlab.md.steered import STEERED_COLUMNS, SteeredSpring, activation_energy
from potlab.md.trajectory import (
    CHECKPOINT,
    LOG_COLUMNS,
    CSVLog,
    FrameWriter,
    load_checkpoint,
    log_row,
    save_checkpoint,
    snapshot,
)
from potlab.progress import progress

log = logging.getLogger(__name__)
_OUTPUTS = ("trajectory.extxyz", "trajectory.traj", "md_log.csv", "steered_log.csv",
            CHECKPOINT, "result.json")


@dataclass
class MDResult:
    """Summary of one run (also written to ``result.json``)."""

    out_dir: str
    temperature_K: float
    seed: int
    steps: int
    time_ps: float
    final_temperature_K: float
    steps_per_s: float
    ns_per_day: float
    stability: StabilityResult
    activation_energy_eV: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_monitors(settings: Monitors, target_K: float | None) -> list[Monitor]:
    """Live monitors from the protocol's ``monitors`` section."""
    if not settings.enabled:
        return []
    mons: list[Monitor] = [FiniteMonitor()]
    if settings.bond_stretch_A is not None:
        mons.append(BondMonitor(settings.bond_stretch_A, exclude_elements=settings.exclude_elements))
    if settings.fusion_fraction is not None:
        mons.append(FusionMonitor(settings.fusion_fraction))
    if settings.density_g_cm3 is not None:
        mons.append(DensityMonitor(*settings.density_g_cm3))
    if settings.temperature_factor is not None or settings.temperature_max_K is not None:
        mons.append(TemperatureMonitor(target_K=target_K, factor=settings.temperature_factor or 5.0,
                                       max_K=settings.temperature_max_K))
    if settings.rdf_threshold is not None:
        mons.append(RDFMonitor(window_ps=settings.rdf_window_ps, threshold=settings.rdf_threshold))
    return mons


def _ramp_target(protocol: MDProtocol, step: int, target_K: float) -> float:
    r = protocol.ramp
    frac = min(1.0, step / max(protocol.ramp_steps, 1))
    return r.start_K + (target_K - r.start_K) * frac


def run_md(atoms: Atoms, calculator: Calculator, protocol: MDProtocol, out_dir: str | Path,
           temperature_K: float | None = None, seed: int | None = None,
           monitors: list[Monitor] | None = None, resume: bool = True) -> MDResult:
    """Run ``protocol`` on ``atoms`` with ``calculator`` at ``temperature_K`` (default: the
    protocol's first) into ``out_dir``. With ``resume`` a checkpoint there is continued (a
    finished run returns at once); without it old outputs are removed first. Live
    ``monitors`` (default: from the protocol) stop the run when one fires."""
    if protocol.engine == "lammps":
        from potlab.md.lammps import run_lammps_md

        return run_lammps_md(atoms, calculator, protocol, out_dir, temperature_K, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    T = float(protocol.temperatures_K[0] if temperature_K is None else temperature_K)
    seed = int(protocol.seed if seed is None else seed)
    dt_fs = protocol.timestep_fs
    total = protocol.total_steps
    if not resume:
        for name in _OUTPUTS:
            (out / name).unlink(missing_ok=True)
    ckpt = load_checkpoint(out) if resume else None
    if ckpt is not None and ckpt.get("finished") and (out / "result.json").exists():
        return _read_result(out)

    atoms = atoms.copy()
    spring = None
    if protocol.steered is not None:
        s = protocol.steered
        for idx in (*s.group_a, *s.group_b):
            if not 0 <= idx < len(atoms):
                raise ValueError(f"steered: atom index {idx} outside 0..{len(atoms) - 1}")
        spring = SteeredSpring(calculator, s.group_a, s.group_b, s.k_eV_A2, s.velocity_A_ps,
                               s.rest_length_A)
        atoms.calc = spring
    else:
        atoms.calc = calculator
    rng = np.random.default_rng(seed)
    frames = FrameWriter(out, protocol.formats, protocol.block)
    md_log = CSVLog(out / "md_log.csv", LOG_COLUMNS)
    steer_log = CSVLog(out / "steered_log.csv", STEERED_COLUMNS) if spring else None
    mons = build_monitors(protocol.monitors, T) if monitors is None else list(monitors)

    if ckpt is None:
        step = 0
        t0 = protocol.initial_temperature_K
        if t0 is None:
            t0 = protocol.ramp.start_K if protocol.ramp else T
        _thermalize(atoms, temperature_K=t0, rng=rng)
        Stationary(atoms)
        _rescale(atoms, t0)  # start at exactly t0 (K)
        atoms0 = snapshot(atoms, 0, 0.0)
        if spring is not None:
            spring.time_fs = 0.0
            steer_log.add({"step": 0, "time_ps": 0.0, **spring.record(atoms)})
        frames.add(snapshot(atoms, 0, 0.0, phase=_phase(protocol, 0)))
        md_log.add(log_row(atoms, 0, 0.0))
        dyn_state: dict[str, Any] = {}
    else:
        step = int(ckpt["step"])
        atoms0 = ckpt["atoms0"]
        atoms.set_cell(ckpt["cell"])
        atoms.set_positions(ckpt["positions"])
        atoms.set_momenta(ckpt["momenta"])
        rng.bit_generator.state = ckpt["rng"]
        dyn_state = ckpt["dyn_state"]
        if spring is not None:
            spring.restore(ckpt["spring"])
        for f in (frames, md_log, steer_log):
            if f is not None:
                f.truncate_after(step)
        log.info("%s: resuming at step %d of %d", out, step, total)
    for mon in mons:
        mon.start(atoms0)

    dyn = None
    phase = None
    failure: StabilityResult | None = None
    start_step, t_start = step, time.perf_counter()
    bar = progress(total=total, initial=step, unit="step", desc=f"MD {T:g} K")
    try:
        while step < total and failure is None:
            if phase != _phase(protocol, step):
                phase = _phase(protocol, step)
                dyn = make_dynamics(atoms, protocol, T, rng,
                                    ensemble="nve" if phase == "ramp" else None)
                if dyn_state.get("phase") == phase:
                    restore_dynamics_state(dyn, dyn_state["state"])
            if spring is not None:
                spring.time_fs = step * dt_fs
                atoms.get_forces()
                spring.time_fs = (step + 1) * dt_fs
            dyn.step()
            step += 1
            time_fs = step * dt_fs
            if phase == "ramp" and step % protocol.ramp.every_steps == 0:
                _rescale(atoms, _ramp_target(protocol, step, T))
            if spring is not None:
                steer_log.add({"step": step, "time_ps": time_fs / 1000, **spring.record(atoms)})
            if step % protocol.interval == 0 or step == total:
                md_log.add(log_row(atoms, step, time_fs))
                frame = snapshot(atoms, step, time_fs, phase=phase)
                for mon in mons:
                    reason = mon.check(atoms, time_fs)
                    if reason is not None:
                        failure = StabilityResult(time_fs / 1000, reason, step, False, mon.name)
                        log.warning("%s: step %d: %s", out, step, reason)
                        break
                full = frames.add(frame)
                if full or failure is not None or step == total:
                    _flush(out, frames, md_log, steer_log, atoms, atoms0, step, rng, dyn,
                           phase, spring, failure)
                elapsed = time.perf_counter() - t_start
                rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
                bar.set_postfix(T=f"{atoms.get_temperature():.0f}K",
                                ns_day=f"{rate * dt_fs * 86400 / 1e6:.3g}")
            bar.update(1)
    finally:
        bar.close()
    elapsed = time.perf_counter() - t_start
    rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
    _flush(out, frames, md_log, steer_log, atoms, atoms0, step, rng, dyn, phase, spring,
           failure, finished=True)
    stability = failure or StabilityResult(step * dt_fs / 1000, None, None, True, None)
    e_act = None
    if spring is not None:
        import csv

        with open(out / "steered_log.csv") as fh:
            e_act = activation_energy([float(r["work_eV"]) for r in csv.DictReader(fh)])
    result = MDResult(str(out), T, seed, step, step * dt_fs / 1000, float(atoms.get_temperature()),
                      rate, rate * dt_fs * 86400 / 1e6, stability, e_act)
    write_text_atomic(json.dumps(asdict(result), indent=1), out / "result.json")
    return result


def _phase(protocol: MDProtocol, step: int) -> str:
    return "ramp" if step < protocol.ramp_steps else "production"


def _rescale(atoms: Atoms, target_K: float) -> None:
    current = atoms.get_temperature()
    if current > 0 and math.isfinite(current):
        atoms.set_momenta(atoms.get_momenta() * math.sqrt(target_K / current))


def _flush(out, frames, md_log, steer_log, atoms, atoms0, step, rng, dyn, phase, spring,
           failure, finished=False) -> None:
    """Frames, then log rows, then the checkpoint: the checkpoint never runs ahead."""
    frames.flush()
    md_log.flush()
    if steer_log is not None:
        steer_log.flush()
    save_checkpoint(out, {
        "step": step, "positions": atoms.get_positions(), "momenta": atoms.get_momenta(),
        "cell": atoms.cell.array.copy(), "rng": rng.bit_generator.state, "atoms0": atoms0,
        "dyn_state": {"phase": phase, "state": dynamics_state(dyn) if dyn is not None else {}},
        "spring": spring.state() if spring is not None else None,
        "failure": asdict(failure) if failure is not None else None,
        "finished": finished or failure is not None,
    })


def _read_result(out: Path) -> MDResult:
    raw = json.loads((out / "result.json").read_text())
    raw["stability"] = StabilityResult(**raw["stability"])
    return MDResult(**raw)


def run_protocol(atoms: Atoms, calculator: Calculator, protocol: MDProtocol,
                 out_dir: str | Path, resume: bool = True) -> list[MDResult]:
    """Every temperature x repeat of ``protocol``, each in ``out_dir/T{temp}K_r{repeat}`` with
    its own seed (``protocol.seed + 1000 * temperature index + repeat``)."""
    results = []
    for i, temp in enumerate(protocol.temperatures_K):
        for r in range(protocol.repeats):
            d = Path(out_dir) / run_dir_name(temp, r)
            results.append(run_md(atoms, calculator, protocol, d, temperature_K=temp,
                                  seed=protocol.seed + 1000 * i + r, resume=resume))
    return results


__all__ = ["MDResult", "build_monitors", "run_md", "run_protocol"]
