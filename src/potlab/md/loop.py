"""The one MD run loop: everything a user relies on, whatever advances the atoms.

The loop owns thermalisation (Maxwell-Boltzmann at the start temperature, zero total
momentum, rescaled to exactly that temperature), the ramp (velocity rescaling between NVE
stretches), stability monitors (live stop and t_stab), block-flushed trajectories and logs,
the checkpoint and the resume, the committee uncertainty every k steps, ``result.json``,
the saved protocol checked on a rerun, and the progress bar. An :class:`Engine` only
advances replicas n steps and reports their state: :class:`potlab.md.ase_engine.ASEEngine`
(ASE integrators), :class:`potlab.md.lammps.LammpsEngine` (``fix external``) and
:class:`potlab.md.batched.BatchedEngine` (many replicas per model call).

Each replica writes into its own directory: ``trajectory.extxyz`` / ``.traj``,
``md_log.csv``, ``steered_log.csv`` (steered MD), ``uq_log.csv`` (with a committee),
``protocol.json`` (the settings, temperature, seed, structure and calculator it ran with),
``checkpoint.pkl`` and, when done, ``result.json``. Replicas advance in lock step; one that
fails is frozen and reported while the others go on. Units: fs, K, eV, A.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ase import Atoms

from potlab.atomic import write_text_atomic
from potlab.md.engine import Engine, MDResult, Replica, Run, thermalize
from potlab.md.identity import structure_fingerprint
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
from potlab.md.protocol import (
    MDProtocol,
    Monitors,
    ProtocolError,
    differing_keys,
    run_settings,
    settings_with_defaults,
)
from potlab.md.steered import STEERED_COLUMNS, activation_energy
from potlab.md.trajectory import (
    CHECKPOINT,
    LOG_COLUMNS,
    CSVLog,
    FrameWriter,
    load_checkpoint,
    log_row,
    save_checkpoint,
)
from potlab.progress import progress

log = logging.getLogger(__name__)
SAVED_PROTOCOL = "protocol.json"
UQ_COLUMNS = ("step", "time_ps", "energy_std_eV", "max_forces_var_eV2_A2")
_OUTPUTS = ("trajectory.extxyz", "trajectory.traj", "md_log.csv", "steered_log.csv",
            "uq_log.csv", CHECKPOINT, "result.json", SAVED_PROTOCOL)


def build_monitors(settings: Monitors, target_K: float | None) -> list[Monitor]:
    """Live monitors from the protocol's ``monitors`` section."""
    if not settings.enabled:
        return []
    mons: list[Monitor] = [FiniteMonitor()]
    if settings.bond_stretch_A is not None or settings.bond_stretch_factor is not None:
        mons.append(BondMonitor(settings.bond_stretch_A, exclude_elements=settings.exclude_elements,
                                max_factor=settings.bond_stretch_factor))
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


def phase_of(protocol: MDProtocol, step: int) -> str:
    """"ramp" before the ramp's last step, then "production"."""
    return "ramp" if step < protocol.ramp_steps else "production"


def _next_event(protocol: MDProtocol, step: int) -> int:
    """The next step at which the loop has something to do (record, rescale, phase change,
    committee evaluation, end)."""
    total = protocol.total_steps
    marks = [total, (step // protocol.interval + 1) * protocol.interval]
    if step < protocol.ramp_steps:
        every = protocol.ramp.every_steps
        marks += [protocol.ramp_steps, (step // every + 1) * every]
    if protocol.uncertainty is not None:
        k = protocol.uncertainty.every_steps
        marks.append((step // k + 1) * k)
    return min(m for m in marks if m > step)


def _read_result(out: Path) -> MDResult:
    raw = json.loads((out / "result.json").read_text())
    raw["stability"] = StabilityResult(**raw["stability"])
    return MDResult(**raw)


class RunLoop:
    """Run ``replicas`` with ``engine`` under ``protocol``: see the module docstring.

    ``identity`` is what the rerun check compares besides the protocol (the calculator's
    fingerprint); ``committee`` (a :class:`~potlab.potential.Committee`) overrides the
    protocol's ``uncertainty.committee`` file."""

    def __init__(self, engine: Engine, protocol: MDProtocol, identity: dict[str, Any],
                 resume: bool = True, committee=None, desc: str = "MD") -> None:
        self.engine, self.protocol, self.identity = engine, protocol, identity
        self.resume, self.desc = resume, desc
        self._committee = committee

    # ---- preparing one run directory -------------------------------------------------
    def _saved(self, out: Path, atoms: Atoms, T: float, seed: int) -> dict[str, Any]:
        return {"settings": run_settings(self.protocol), "temperature_K": T, "seed": seed,
                "structure": structure_fingerprint(atoms), "calculator": self.identity}

    def _prepare(self, k: int, rep: Replica) -> Run | MDResult:
        p = self.protocol
        out = Path(rep.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        T = float(p.temperatures_K[0] if rep.temperature_K is None else rep.temperature_K)
        seed = int(p.seed if rep.seed is None else rep.seed)
        if not self.resume:
            for name in _OUTPUTS:
                (out / name).unlink(missing_ok=True)
            for f in out.glob("lammps_*.restart"):
                f.unlink()
        saved = self._saved(out, rep.atoms, T, seed)
        saved_path = out / SAVED_PROTOCOL
        if saved_path.exists():
            old = json.loads(saved_path.read_text())
            if isinstance(old.get("settings"), dict):
                old["settings"] = settings_with_defaults(old["settings"])
            keys = differing_keys(old, json.loads(json.dumps(saved)))
            if keys:
                shown = ", ".join(k.removeprefix("settings.") for k in keys)
                raise ProtocolError(f"{out}: this run was made with other settings ({shown} "
                                    "differ): use --restart (resume=False) or another --out")
        elif (out / CHECKPOINT).exists() or (out / "result.json").exists():
            raise ProtocolError(f"{out}: holds a run without a saved protocol (an older "
                                "potlab); it cannot be checked or resumed exactly: use --restart "
                                "(resume=False) or another --out")
        ckpt = load_checkpoint(out)
        if ckpt is not None and ckpt.get("finished") and (out / "result.json").exists():
            return _read_result(out)
        if ckpt is not None and ckpt.get("engine") != self.engine.name:
            raise ProtocolError(f"{out}: checkpoint of engine {ckpt.get('engine')}, not "
                                f"{self.engine.name}")
        if ckpt is not None and ckpt.get("versions") != self.engine.versions():
            raise ProtocolError(f"{out}: checkpoint written with {ckpt.get('versions')}, this is "
                                f"{self.engine.versions()}: it cannot be resumed exactly; use "
                                "--restart (resume=False)")
        write_text_atomic(json.dumps(saved, indent=1), saved_path)
        run = Run(k, rep.atoms.copy(), out, T, seed)
        run.frames = FrameWriter(out, p.formats, p.block)
        run.md_log = CSVLog(out / "md_log.csv", LOG_COLUMNS)
        run.steer_log = CSVLog(out / "steered_log.csv", STEERED_COLUMNS) if p.steered else None
        run.uq_log = CSVLog(out / "uq_log.csv", UQ_COLUMNS) if p.uncertainty else None
        run.monitors = build_monitors(p.monitors, T) if rep.monitors is None else list(rep.monitors)
        if ckpt is None:
            # nothing to resume: frames or rows written before the first checkpoint (a kill
            # between the two) would otherwise be appended to
            for name in _OUTPUTS:
                if name != SAVED_PROTOCOL:
                    (out / name).unlink(missing_ok=True)
            for f in out.glob("lammps_*.restart"):
                f.unlink()
            t0 = p.initial_temperature_K
            if t0 is None:
                t0 = p.ramp.start_K if p.ramp else T
            run.atoms.calc = None
            thermalize(run.atoms, t0, run.rng)
            run.fresh = True
        else:
            run.fresh = False
            run.step = int(ckpt["step"])
            run.atoms0 = ckpt["atoms0"]
            run.rng.bit_generator.state = ckpt["rng"]
            run.engine_state = ckpt["engine_state"]
            run.uq_max = ckpt.get("uq_max", run.uq_max)
            run.monitor_state = ckpt.get("monitors")
            for f in (run.frames, run.md_log, run.steer_log, run.uq_log):
                if f is not None:
                    f.truncate_after(run.step)
            log.info("%s: resuming at step %d of %d", out, run.step, p.total_steps)
        return run

    # ---- the loop ----------------------------------------------------------------------
    def run(self, replicas: list[Replica]) -> list[MDResult]:
        p = self.protocol
        results: dict[int, MDResult] = {}
        runs: list[Run] = []
        for k, rep in enumerate(replicas):
            prepared = self._prepare(k, rep)
            if isinstance(prepared, MDResult):
                results[k] = prepared
            else:
                runs.append(prepared)
        if not runs:
            return [results[k] for k in range(len(replicas))]
        engine = self.engine
        try:
            engine.start(runs)
            fresh = [r for r in runs if r.fresh]
            for r, frame in zip(fresh, engine.frames(fresh)):
                r.atoms0 = frame.copy()
                r.atoms0.calc = None
                self._record(r, frame, check=False)
                self._drain_steer(r)
            for r in runs:
                for mon in r.monitors:
                    mon.start(r.atoms0)
                if not r.fresh and getattr(r, "monitor_state", None):
                    for mon, st in zip(r.monitors, r.monitor_state):
                        mon.restore(st)
                r.start_step = r.step
            t_start = time.perf_counter()
            total = p.total_steps
            bar = progress(total=sum(total - r.step for r in runs), unit="step",
                           desc=f"{self.desc} x{len(runs)}" if len(runs) > 1 else self.desc)
            try:
                while True:
                    active = [r for r in runs if not r.done and r.step < total]
                    if not active:
                        break
                    s = min(r.step for r in active)
                    group = [r for r in active if r.step == s]
                    target = _next_event(p, s)
                    phase = phase_of(p, s)
                    record = target % p.interval == 0 or target == total
                    engine.advance(group, target - s, phase, stress=record)
                    for r in group:
                        r.step = target
                        if phase == "ramp" and target % p.ramp.every_steps == 0:
                            engine.rescale(r, _ramp_target(p, target, r.temperature_K))
                        self._drain_steer(r)
                    if p.uncertainty is not None and target % p.uncertainty.every_steps == 0:
                        self._uncertainty(group)
                    if record:
                        for r, frame in zip(group, engine.frames(group)):
                            self._record(r, frame, check=True)
                    elapsed = time.perf_counter() - t_start
                    for r in group:
                        if r.failure is not None or r.step == total:
                            self._finish(r, elapsed)
                    bar.update(len(group) * (target - s))
                    if record:
                        rate = sum(r.step - r.start_step for r in runs) / max(elapsed, 1e-9)
                        bar.set_postfix(ns_day=f"{rate * p.timestep_fs * 86400 / 1e6:.3g}")
            finally:
                bar.close()
            for r in runs:
                if not r.done:  # total steps already reached at resume
                    self._finish(r, time.perf_counter() - t_start)
        finally:
            engine.close()
        for r in runs:
            results[r.index] = r.result
        return [results[k] for k in range(len(replicas))]

    def _drain_steer(self, r: Run) -> None:
        if r.steer_log is not None:
            for row in r.steer_rows:
                r.steer_log.add(row)
        r.steer_rows = []

    def _record(self, r: Run, frame: Atoms, check: bool) -> None:
        p = self.protocol
        time_fs = r.step * p.timestep_fs
        frame.info.update(step=int(r.step), time_fs=float(time_fs), phase=phase_of(p, r.step))
        if self.engine.name != "ase":
            frame.info["engine"] = self.engine.name
        r.md_log.add(log_row(frame, r.step, time_fs))
        if check and r.failure is None:
            for mon in r.monitors:
                reason = mon.check(frame, time_fs)
                if reason is not None:
                    r.failure = StabilityResult(time_fs / 1000, reason, r.step, False, mon.name)
                    log.warning("%s: step %d: %s", r.out, r.step, reason)
                    break
        full = r.frames.add(frame)
        if check and (full or r.failure is not None or r.step == p.total_steps):
            self._flush(r)

    def _flush(self, r: Run, finished: bool = False) -> None:
        """Frames, then log rows, then the checkpoint: the checkpoint never runs ahead."""
        for f in (r.frames, r.md_log, r.steer_log, r.uq_log):
            if f is not None:
                f.flush()
        save_checkpoint(r.out, {
            "step": r.step, "engine": self.engine.name, "versions": self.engine.versions(),
            "engine_state": self.engine.state(r), "rng": r.rng.bit_generator.state,
            "atoms0": r.atoms0, "uq_max": r.uq_max,
            "monitors": [m.state() for m in r.monitors],
            "failure": asdict(r.failure) if r.failure is not None else None,
            "finished": finished or r.failure is not None,
        })

    # ---- committee uncertainty ---------------------------------------------------------
    @property
    def committee(self):
        if self._committee is None:
            from potlab.potential import load

            self._committee = load(self.protocol.uncertainty.committee,
                                   device=self.protocol.device or "cpu")
            if not hasattr(self._committee, "members"):
                raise ProtocolError(f"uncertainty.committee: {self.protocol.uncertainty.committee} "
                                    "is a single potential, not a committee file")
        return self._committee

    def _uncertainty(self, group: list[Run]) -> None:
        """One committee call for every replica in ``group``: energy std (eV) and max force
        variance (eV^2/A^2) logged; above a threshold with ``stop`` the run fails."""
        import torch

        from potlab.graph import build_graph

        u = self.protocol.uncertainty
        com = self.committee
        frames = self.engine.frames(group, stress=False)
        batch = build_graph(frames, com.cutoff, dtype=com.dtype).to(com.e0_table.device)
        with torch.enable_grad():
            out = com(batch, forces=True)
        energy = out["energy"].detach().double().cpu().numpy()  # [N, n_frames]
        forces = out["forces"].detach().double().cpu().numpy()  # [N, n_atoms, 3]
        var = ((forces - forces.mean(axis=0)) ** 2).sum(axis=-1).mean(axis=0)  # [n_atoms]
        start = 0
        for k, (r, frame) in enumerate(zip(group, frames)):
            n = len(frame)
            e_std, f_var = float(energy[:, k].std()), float(var[start:start + n].max())
            start += n
            time_fs = r.step * self.protocol.timestep_fs
            r.uq_log.add({"step": r.step, "time_ps": time_fs / 1000, "energy_std_eV": e_std,
                          "max_forces_var_eV2_A2": f_var})
            r.uq_max = {"energy_std_eV": max(r.uq_max["energy_std_eV"], e_std),
                        "max_forces_var_eV2_A2": max(r.uq_max["max_forces_var_eV2_A2"], f_var)}
            if u.stop and r.failure is None:
                reason = None
                if u.max_forces_var is not None and f_var > u.max_forces_var:
                    reason = f"committee max force variance {f_var:.3g} eV^2/A^2 > {u.max_forces_var}"
                elif u.max_energy_std is not None and e_std > u.max_energy_std:
                    reason = f"committee energy std {e_std:.3g} eV > {u.max_energy_std}"
                if reason is not None:
                    r.failure = StabilityResult(time_fs / 1000, reason, r.step, False, "uncertainty")
                    log.warning("%s: step %d: %s", r.out, r.step, reason)
                    if r.step % self.protocol.interval != 0:  # record the frame it stopped at
                        self._record(r, self.engine.frames([r])[0], check=False)
                    self._flush(r)

    # ---- ending a run ------------------------------------------------------------------
    def _finish(self, r: Run, elapsed: float) -> None:
        p = self.protocol
        dt = p.timestep_fs
        final = self.engine.frames([r])[0]
        self._flush(r, finished=True)
        self.engine.stop(r)
        r.done = True
        rate = (r.step - r.start_step) / elapsed if elapsed > 0 else 0.0
        stability = r.failure or StabilityResult(r.step * dt / 1000, None, None, True, None)
        e_act = None
        if r.steer_log is not None and (r.out / "steered_log.csv").exists():
            with open(r.out / "steered_log.csv") as fh:
                e_act = activation_energy([float(x["work_eV"]) for x in csv.DictReader(fh)])
        extra: dict[str, Any] = {"engine": self.engine.name}
        if p.uncertainty is not None:
            extra["uncertainty"] = dict(r.uq_max)
        r.result = MDResult(str(r.out), r.temperature_K, r.seed, r.step, r.step * dt / 1000,
                            float(final.get_temperature()), rate, rate * dt * 86400 / 1e6,
                            stability, e_act, extra)
        write_text_atomic(json.dumps(asdict(r.result), indent=1), r.out / "result.json")
