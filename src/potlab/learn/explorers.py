"""Explorers: MD with the committee's best member that finds frames worth labelling.

- :class:`SteeredExplorer` (seed 002): steered MD (a spring between two atoms or groups whose
  rest length moves at constant velocity); the collective variable is the spring length
  and the tracked quantity the barrier, the maximum of the work (eV).
- :class:`MDExplorer`: MD at the protocol's temperatures and repeats, any ensemble; with
  ``stop_max_forces_var`` it is seed 003's explorer: the committee is evaluated in the run
  every ``uq_every`` steps (not every step) and the run stops at the first frame above
  the threshold, or on a monitor (bond stretch, density).

Both go through :func:`potlab.md.run_md` (a killed explorer resumes from its checkpoint)
and store a frame every ``protocol.interval`` steps; those frames are what gets scored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from potlab.md.monitors import BondMonitor, FusionMonitor


@dataclass
class Exploration:
    """What an explorer run produced: ``frames`` in order with their MD ``steps``, the
    collective variable per frame (A, or None), the tracked quantity (eV, or None), the
    work curve (anchor A, work eV) of a steered run, and the run directories."""

    frames: list[Atoms]
    steps: np.ndarray
    cv: np.ndarray | None = None
    tracked_eV: float | None = None
    work_curve: tuple[list[float], list[float]] | None = None
    run_dirs: list[str] = field(default_factory=list)
    stopped: list[str | None] = field(default_factory=list)
    run_index: np.ndarray | None = None  # [n_frames] which run each frame came from


def broken_bonds(frames: list[Atoms], start: Atoms, factor: float) -> np.ndarray:
    """[n_frames] bool: some bond of ``start`` is longer than ``factor`` times its length
    there (bonds as :class:`potlab.md.BondMonitor` finds them, every element judged)."""
    mon = BondMonitor(exclude_elements=())
    mon.start(start)
    if len(mon.i) == 0:
        return np.zeros(len(frames), dtype=bool)
    return np.array([bool((mon.lengths(f) > factor * mon.len0).any()) for f in frames])


def fused_frames(frames: list[Atoms], fraction: float | None,
                 min_distance: float | None = None) -> np.ndarray:
    """[n_frames] bool: two atoms closer than ``fraction`` x their covalent radii sum
    (:class:`potlab.md.monitors.FusionMonitor`'s test; ``fraction`` None: not tested) or
    closer than ``min_distance`` (A; the labeller refuses such pairs, and an augmented copy
    can move a pair closer: see :func:`labellable_distance`)."""
    from potlab.reference.labeller import closest_pair

    out = np.zeros(len(frames), dtype=bool)
    if fraction is not None:
        mon = FusionMonitor(fraction)
        out |= np.array([mon.check(f, 0.0) is not None for f in frames], dtype=bool)
    if min_distance is not None:
        out |= np.array([closest_pair(f, min_distance) is not None for f in frames], dtype=bool)
    return out


def labellable_distance(amplitude_A: float, copies: int) -> float:
    """The shortest pair distance (A) a selected frame may have so that it and its
    augmented copies (uniform noise of +-``amplitude_A`` per coordinate moves a pair by at
    most 2 sqrt(3) amplitude) stay above the labeller's ``MIN_DISTANCE``."""
    from potlab.reference.labeller import MIN_DISTANCE

    return MIN_DISTANCE + (2 * np.sqrt(3) * amplitude_A if copies else 0.0)


def read_frames_of(run_dir: str | Path) -> list[Atoms]:
    return list(ase.io.read(Path(run_dir) / "trajectory.extxyz", ":"))


def read_steered_log(run_dir: str | Path) -> dict[str, np.ndarray]:
    with open(Path(run_dir) / "steered_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]} if rows else {}


@dataclass(frozen=True)
class SteeredExplorer:
    """Steered MD with ``protocol`` (a :class:`potlab.md.MDProtocol` with ``steered``)."""

    protocol: object

    def run(self, atoms: Atoms, calculator, out_dir: str | Path) -> Exploration:
        from potlab.md.runner import run_md

        res = run_md(atoms, calculator, self.protocol, out_dir, resume=True)
        frames = read_frames_of(out_dir)
        steps = np.array([int(f.info["step"]) for f in frames])
        log = read_steered_log(out_dir)
        by_step = dict(zip(log["step"].astype(int), log["spring_length_A"]))
        cv = np.array([by_step.get(int(s), np.nan) for s in steps])
        curve = (log["anchor_A"].tolist(), log["work_eV"].tolist())
        return Exploration(frames, steps, cv, res.activation_energy_eV, curve, [str(out_dir)],
                           [res.stability.reason])


@dataclass(frozen=True)
class MDExplorer:
    """MD at every temperature x repeat of ``protocol``; with ``stop_max_forces_var`` the
    committee file ``committee`` is evaluated every ``uq_every`` steps and stops a run."""

    protocol: object
    committee: str | None = None
    stop_max_forces_var: float | None = None
    uq_every: int = 10

    def run(self, atoms: Atoms, calculator, out_dir: str | Path) -> Exploration:
        from potlab.md.protocol import Uncertainty
        from potlab.md.runner import run_protocol

        p = self.protocol
        if self.stop_max_forces_var is not None:
            if self.committee is None:
                raise ValueError("MDExplorer: stop_max_forces_var needs the committee file")
            p = p.model_copy(update={"uncertainty": Uncertainty(
                committee=str(self.committee), every_steps=self.uq_every,
                max_forces_var=self.stop_max_forces_var, stop=True)})
        results = run_protocol(atoms, calculator, p, out_dir, resume=True)
        frames, steps, dirs, stopped, index = [], [], [], [], []
        for k, r in enumerate(results):
            fr = read_frames_of(r.out_dir)
            frames += fr
            index += [k] * len(fr)
            steps += [int(f.info["step"]) for f in fr]
            dirs.append(r.out_dir)
            stopped.append(r.stability.reason)
        return Exploration(frames, np.array(steps), None, None, None, dirs, stopped,
                           np.array(index, dtype=int))
