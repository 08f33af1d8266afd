"""Selectors: which explorer frames get labelled. Each is a small typed unit with one job,
mapping a :class:`Pool` of scored frames and the indices still in the running to the
indices it keeps (in trajectory order); :func:`select_frames` chains them as seed 002 does.

- :class:`CalibratedThreshold` (seed 002): mean + n sigma of the uncertainty over the
  frames of the explorer's first N steps; :class:`AbsoluteThreshold` (seed 003: 0.5
  eV^2/A^2); :class:`AboveThreshold` keeps the frames above the threshold.
- :class:`NotInData`: never a frame whose structure hash is already in the data.
- :class:`NotFused`: never a frame with two atoms fused (the reference fails on it).
- :class:`SimilarityScreen` (seed 002, 2.3.3): walking the frames in order, a frame is kept
  only if it differs from every frame kept so far by at least ``min_cv`` in the
  collective variable (the spring length, A) and ``min_energy`` in energy (eV); at most
  ``max_after_break`` frames after a bond broke.
- :class:`MaxCount`: at most M frames, the most uncertain.
- :class:`FirstAbove` (seed 003): the first frame above the threshold, else the most
  uncertain frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KCAL_MOL_IN_EV = 0.0433641043  # 1 kcal/mol in eV


@dataclass
class Pool:
    """Scored frames of one explorer run; arrays of shape [n_frames].

    ``uncertainty`` in the measure's unit, ``step`` the MD step of each frame, ``cv`` the
    collective variable (A; NaN when the explorer has none), ``energy`` (eV), ``broken``
    (a bond of the start structure broke), ``hashes`` the structure hashes, ``run`` the
    explorer run (temperature x repeat) of each frame."""

    uncertainty: np.ndarray
    step: np.ndarray
    cv: np.ndarray | None = None
    energy: np.ndarray | None = None
    broken: np.ndarray | None = None
    hashes: list[str] = field(default_factory=list)
    run: np.ndarray | None = None  # which explorer run each frame came from
    fused: np.ndarray | None = None  # two atoms closer than the fusion criterion

    def __len__(self) -> int:
        return len(self.uncertainty)


@dataclass(frozen=True)
class Calibration:
    """The threshold used and where it came from (mu and sigma are NaN when absolute)."""

    threshold: float
    mu: float = float("nan")
    sigma: float = float("nan")
    n_frames: int = 0

    def record(self) -> dict[str, float | int | None]:
        """As the record keeps it (None for NaN: JSON has no NaN)."""
        def num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {"threshold": self.threshold, "mu": num(self.mu), "sigma": num(self.sigma),
                "calibration_frames": self.n_frames}


@dataclass(frozen=True)
class CalibratedThreshold:
    """mu + ``n_sigma`` * sigma of the uncertainty of the frames with step <= ``first_steps``."""

    first_steps: int = 1000
    n_sigma: float = 3.0

    def calibrate(self, pool: Pool) -> Calibration:
        early = pool.uncertainty[pool.step <= self.first_steps]
        if early.size == 0:
            raise ValueError(f"calibrated threshold: no frame within the first {self.first_steps} "
                             "steps of the explorer run")
        mu, sigma = float(early.mean()), float(early.std())
        return Calibration(mu + self.n_sigma * sigma, mu, sigma, int(early.size))


@dataclass(frozen=True)
class AbsoluteThreshold:
    value: float

    def calibrate(self, pool: Pool) -> Calibration:
        return Calibration(float(self.value))


@dataclass(frozen=True)
class AboveThreshold:
    """Frames whose uncertainty is strictly above ``threshold``."""

    threshold: float

    def __call__(self, pool: Pool, idx: np.ndarray) -> np.ndarray:
        return idx[pool.uncertainty[idx] > self.threshold]


@dataclass(frozen=True)
class NotInData:
    """Frames whose structure hash is not in ``known`` (the data's hashes)."""

    known: frozenset[str]

    def __call__(self, pool: Pool, idx: np.ndarray) -> np.ndarray:
        return np.array([i for i in idx if pool.hashes[i] not in self.known], dtype=int)


@dataclass(frozen=True)
class NotFused:
    """Frames not marked ``fused`` in the pool (all of them when the pool has no mark)."""

    def __call__(self, pool: Pool, idx: np.ndarray) -> np.ndarray:
        return idx if pool.fused is None else idx[~pool.fused[idx]]


@dataclass(frozen=True)
class SimilarityScreen:
    """Seed 002's screen; ``min_cv`` in A, ``min_energy`` in eV; ``max_after_break`` None
    for no cap. A pool without a collective variable (or energy) skips that test."""

    min_cv: float = 0.01
    min_energy: float = 1.0 * KCAL_MOL_IN_EV
    max_after_break: int | None = 50

    def __call__(self, pool: Pool, idx: np.ndarray) -> np.ndarray:
        kept: list[int] = []
        n_broken = 0
        for i in idx:
            broken = bool(pool.broken[i]) if pool.broken is not None else False
            if broken and self.max_after_break is not None and n_broken >= self.max_after_break:
                continue
            if kept:
                k = np.array(kept)
                far = np.ones(len(k), dtype=bool)
                if pool.cv is not None and np.isfinite(pool.cv[i]):
                    far &= np.abs(pool.cv[k] - pool.cv[i]) >= self.min_cv
                if pool.energy is not None:
                    far &= np.abs(pool.energy[k] - pool.energy[i]) >= self.min_energy
                if not far.all():
                    continue
            kept.append(int(i))
            n_broken += broken
        return np.array(kept, dtype=int)


@dataclass(frozen=True)
class MaxCount:
    """At most ``m`` frames: the ``m`` most uncertain (ties: the earlier), in frame order."""

    m: int

    def __call__(self, pool: Pool, idx: np.ndarray) -> np.ndarray:
        if len(idx) <= self.m:
            return idx
        order = np.lexsort((idx, -pool.uncertainty[idx]))  # uncertainty down, then index up
        return np.sort(idx[order[: self.m]])


@dataclass(frozen=True)
class FirstAbove:
    """Seed 003: per explorer run, the first frame above ``threshold``; if none is, that
    run's most uncertain frame."""

    threshold: float

    def __call__(self, pool: Pool, idx: np.ndarray) -> np.ndarray:
        runs = pool.run if pool.run is not None else np.zeros(len(pool), dtype=int)
        kept = []
        for r in np.unique(runs[idx]):
            mine = idx[runs[idx] == r]
            above = mine[pool.uncertainty[mine] > self.threshold]
            kept.append(int(above[0]) if len(above) else int(mine[np.argmax(pool.uncertainty[mine])]))
        return np.array(sorted(kept), dtype=int)


def select_frames(pool: Pool, threshold: CalibratedThreshold | AbsoluteThreshold,
                  known: frozenset[str], screen: SimilarityScreen | None, max_frames: int,
                  first_only: bool = False) -> tuple[np.ndarray, Calibration, dict[str, int]]:
    """Seed 002's chain: threshold -> not in the data, not fused -> similarity screen -> at most
    ``max_frames``; with ``first_only`` seed 003's first frame above the threshold (or the
    most uncertain). Returns the kept indices, the calibration and the count after each
    stage."""
    cal = threshold.calibrate(pool)
    idx = np.arange(len(pool))
    counts = {"scored": len(idx)}
    idx = NotInData(known)(pool, idx)
    idx = NotFused()(pool, idx)
    counts["unfused"] = len(idx)
    if first_only:
        idx = FirstAbove(cal.threshold)(pool, idx)
        counts["above_threshold"] = int((pool.uncertainty > cal.threshold).sum())
    else:
        idx = AboveThreshold(cal.threshold)(pool, idx)
        counts["above_threshold"] = len(idx)
        if screen is not None:
            idx = screen(pool, idx)
            counts["after_screen"] = len(idx)
    idx = MaxCount(max_frames)(pool, idx)
    counts["selected"] = len(idx)
    return idx, cal, counts


def selectors_of(spec) -> tuple[CalibratedThreshold | AbsoluteThreshold, SimilarityScreen | None]:
    """The threshold and the similarity screen a learn config's ``select`` section
    (:class:`potlab.learn.config.SelectSpec`) describes."""
    t, sim = spec.threshold, spec.similarity
    threshold = (CalibratedThreshold(t.first_steps, t.n_sigma) if t.kind == "calibrated"
                 else AbsoluteThreshold(t.value))
    screen = (SimilarityScreen(sim.min_cv_A, sim.min_energy_kcal_mol * KCAL_MOL_IN_EV,
                               sim.max_after_break) if sim.enabled else None)
    return threshold, screen
