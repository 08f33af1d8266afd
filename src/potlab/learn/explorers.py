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
With ``engine: batched`` a model's repeats (pulls) advance together in one model call per
step; the reference's run on engine ase (:func:`protocol_for`), side by side on the
reference's workers (``make_calculator``, :func:`potlab.md.run_protocol`).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from potlab.md.monitors import BondMonitor, FusionMonitor

log = logging.getLogger(__name__)


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
    tracked_each: list[float | None] = field(default_factory=list)  # per run (steered pulls)


def start_bonds(start: Atoms) -> BondMonitor:
    """The bonds of ``start`` as :class:`potlab.md.BondMonitor` finds them, every element
    judged (``.i``, ``.j`` atom indices, ``.len0`` lengths): the bonds a pull may break."""
    mon = BondMonitor(exclude_elements=())
    mon.start(start)
    return mon


def broken_bonds(frames: list[Atoms], start: Atoms, factor: float) -> np.ndarray:
    """[n_frames] bool: some bond of ``start`` (:func:`start_bonds`) is longer than
    ``factor`` times its length there."""
    mon = start_bonds(start)
    if len(mon.i) == 0:
        return np.zeros(len(frames), dtype=bool)
    return np.array([bool((mon.lengths(f) > factor * mon.len0).any()) for f in frames])


def broken_bond_pairs(frame: Atoms, start: Atoms, factor: float) -> list[tuple[int, int]]:
    """The bonds of ``start`` (atom index pairs, as :func:`broken_bonds` finds them) longer
    than ``factor`` times their length there in ``frame``: which bond a pull broke."""
    mon = start_bonds(start)
    if len(mon.i) == 0:
        return []
    bad = np.flatnonzero(mon.lengths(frame) > factor * mon.len0)
    return [(int(mon.i[k]), int(mon.j[k])) for k in bad]


def pulls_broken_bonds(run_dir: str | Path, start: Atoms, factor: float) -> list[str]:
    """Per steered pull of ``run_dir`` (:func:`pull_dirs`' order) the bonds broken in its
    last frame, as ``"C4-C5"`` (element and atom index, pairs joined by a space; ``""``:
    none): which product channel each pull took."""
    sym = start.get_chemical_symbols()
    return [" ".join(f"{sym[i]}{i}-{sym[j]}{j}"
                     for i, j in broken_bond_pairs(read_frames_of(d)[-1], start, factor))
            for d in pull_dirs(run_dir)]


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


def pull_dirs(run_dir: str | Path) -> list[Path]:
    """The steered pulls of an explorer run directory: the directory itself for one pull,
    else its ``T{temp}K_r{repeat}`` runs by temperature, then repeat (repeat 0, the
    protocol's own seed, first)."""
    import re

    run_dir = Path(run_dir)
    if (run_dir / "steered_log.csv").exists():
        return [run_dir]
    runs = []
    for d in run_dir.glob("T*K_r*"):
        m = re.fullmatch(r"T(.+)K_r(\d+)", d.name)
        if m and (d / "steered_log.csv").exists():
            runs.append((float(m.group(1)), int(m.group(2)), d))
    return [d for _, _, d in sorted(runs)]


def mean_and_sem(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (None for one value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None)


def error_standard_error(model: list[float] | None, reference: list[float] | None) -> float | None:
    """The standard error of ``mean(model) - mean(reference)`` from both sides' pulls, or
    None unless both pulled at least twice (one pull says nothing of its scatter)."""
    if not model or not reference or len(model) < 2 or len(reference) < 2:
        return None
    return float(np.hypot(mean_and_sem(model)[1], mean_and_sem(reference)[1]))


def protocol_for(protocol, calculator):
    """``protocol`` for ``calculator``: engine batched runs a potlab potential's pulls (or MD
    runs) together, one model call per step; the reference method's calculator (xTB, EMT)
    cannot be batched, so its runs of the same protocol go on engine ase, one after another
    or on worker processes (the same integrator: a Berendsen or Nose-Hoover replica follows
    the ASE engine's trajectory, tested in tests/test_md_batched.py)."""
    from potlab.md.runner import batchable

    if protocol.engine == "batched" and not batchable(calculator):
        log.info("engine batched runs potlab potentials: %s runs on engine ase",
                 type(calculator).__name__)
        return protocol.model_copy(update={"engine": "ase"})
    return protocol


@dataclass(frozen=True)
class SteeredExplorer:
    """Steered MD with ``protocol`` (a :class:`potlab.md.MDProtocol` with ``steered``).
    With ``repeats: N`` (or several temperatures) it pulls N times, each pull with its own
    seed (initial velocities and thermostat noise; the first has the protocol's seed, as a
    single pull does): the tracked quantity is the mean of the pulls' largest work, each
    pull's is in ``tracked_each``, and the frames of all pulls are scored (``run_index``).
    One pull's barrier scatters with the noise alone (seed 002's hexane under GFN2-xTB at
    10 K: 5.5 kcal/mol sample standard deviation over 6 seeds,
    ``docs/results/hexane-learn/pull_noise.csv``)."""

    protocol: object

    def run(self, atoms: Atoms, calculator, out_dir: str | Path, **parallel) -> Exploration:
        """``parallel``: ``make_calculator``, ``workers``, ``scheduler`` of
        :func:`potlab.md.run_protocol` (a reference's pulls side by side)."""
        results, dirs = self._pulls(atoms, calculator, out_dir, **parallel)
        frames, steps, cv, index = [], [], [], []
        for k, d in enumerate(dirs):
            fr = read_frames_of(d)
            st = [int(f.info["step"]) for f in fr]
            pull = read_steered_log(d)
            by_step = dict(zip(pull["step"].astype(int), pull["spring_length_A"]))
            frames += fr
            steps += st
            cv += [by_step.get(s, np.nan) for s in st]
            index += [k] * len(fr)
            if k == 0:
                curve = (pull["anchor_A"].tolist(), pull["work_eV"].tolist())
        each = [r.activation_energy_eV for r in results]
        tracked = None if None in each else mean_and_sem(each)[0]
        return Exploration(frames, np.array(steps), np.array(cv), tracked, curve,
                           [str(d) for d in dirs], [r.stability.reason for r in results],
                           np.array(index, dtype=int), each)

    def barriers(self, atoms: Atoms, calculator, out_dir: str | Path,
                 **parallel) -> list[float | None]:
        """Each pull's largest work (eV), run or read back (a finished pull returns its
        result), without reading the pulls' frames."""
        return [r.activation_energy_eV for r in self._pulls(atoms, calculator, out_dir,
                                                            **parallel)[0]]

    def _pulls(self, atoms: Atoms, calculator, out_dir: str | Path, **parallel):
        from potlab.md.runner import run_md, run_protocol

        p = protocol_for(self.protocol, calculator)
        if p.repeats == 1 and len(p.temperatures_K) == 1:
            return [run_md(atoms, calculator, p, out_dir, resume=True)], [Path(out_dir)]
        results = run_protocol(atoms, calculator, p, out_dir, resume=True, **parallel)
        return results, [Path(r.out_dir) for r in results]


@dataclass(frozen=True)
class MDExplorer:
    """MD at every temperature x repeat of ``protocol``; with ``stop_max_forces_var`` the
    committee file ``committee`` is evaluated every ``uq_every`` steps and stops a run."""

    protocol: object
    committee: str | None = None
    stop_max_forces_var: float | None = None
    uq_every: int = 10

    def run(self, atoms: Atoms, calculator, out_dir: str | Path, **parallel) -> Exploration:
        """``parallel`` as :meth:`SteeredExplorer.run` (not with the committee stop)."""
        from potlab.md.protocol import Uncertainty
        from potlab.md.runner import run_protocol

        p = protocol_for(self.protocol, calculator)
        if self.stop_max_forces_var is not None:
            if self.committee is None:
                raise ValueError("MDExplorer: stop_max_forces_var needs the committee file")
            p = p.model_copy(update={"uncertainty": Uncertainty(
                committee=str(self.committee), every_steps=self.uq_every,
                max_forces_var=self.stop_max_forces_var, stop=True)})
        if p.uncertainty is not None:
            parallel = {}  # the committee stop runs where its committee is loaded
        results = run_protocol(atoms, calculator, p, out_dir, resume=True, **parallel)
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
