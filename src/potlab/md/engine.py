"""What an MD engine implements for the run loop (:mod:`potlab.md.loop`), and the loop's
records: :class:`Engine` (advance replicas n steps, report their state), :class:`Run` (the
loop's record of one replica, which engines read), :class:`Replica` (one run a caller asks
for) and :class:`MDResult` (the summary in ``result.json``); the start of every run
(:func:`thermalize`) and velocity rescaling, whatever the engine."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.md.velocitydistribution import Stationary

try:  # ASE >= 3.28
    from ase.md.velocitydistribution import thermalize_momenta as _thermalize
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as _thermalize

from potlab.md.monitors import Monitor, StabilityResult


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


@dataclass
class Replica:
    """One run of a batch: the structure, its directory, target temperature (K; None: the
    protocol's first), seed (None: the protocol's) and live monitors (None: from the
    protocol)."""

    atoms: Atoms
    out_dir: str | Path
    temperature_K: float | None = None
    seed: int | None = None
    monitors: list[Monitor] | None = None


class Run:
    """The loop's record of one replica (engines read ``atoms``, ``temperature_K``,
    ``seed``, ``rng``, ``step`` and ``engine_state`` and keep their own data in ``data``)."""

    def __init__(self, index: int, atoms: Atoms, out: Path, temperature_K: float, seed: int):
        self.index, self.atoms, self.out = index, atoms, out
        self.temperature_K, self.seed = temperature_K, seed
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.engine_state: dict[str, Any] | None = None
        self.data: dict[str, Any] = {}
        self.steer_rows: list[dict[str, Any]] = []
        self.failure: StabilityResult | None = None
        self.done = False
        self.uq_max = {"energy_std_eV": 0.0, "max_forces_var_eV2_A2": 0.0}


class Engine:
    """Advances replicas and reports them; the loop does everything else.

    ``start(runs)`` sets up each run from ``run.atoms`` (thermalised by the loop) or, when
    ``run.engine_state`` is set, from what :meth:`state` saved. ``advance(runs, n, phase,
    stress)`` moves those runs ``n`` steps (``phase`` "ramp" integrates NVE, "production"
    the protocol's ensemble); with ``stress`` the state after the last step carries the
    stress. ``frames(runs)`` returns detached Atoms with momenta and the calculator's
    energy, forces (and stress) as a SinglePointCalculator. ``rescale(run, target_K)``
    scales the momenta to a temperature; ``state(run)`` is plain data that restores the run
    exactly; ``stop(run)`` drops a finished or failed run.
    """

    name = "engine"

    def start(self, runs: list[Run]) -> None:
        raise NotImplementedError

    def advance(self, runs: list[Run], n: int, phase: str, stress: bool) -> None:
        raise NotImplementedError

    def frames(self, runs: list[Run], stress: bool = True) -> list[Atoms]:
        """``stress=False``: the caller does not need the stress (no extra evaluation)."""
        raise NotImplementedError

    def rescale(self, run: Run, target_K: float) -> None:
        raise NotImplementedError

    def state(self, run: Run) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, run: Run) -> None:
        """Forget ``run`` (it will not be advanced again)."""

    def close(self) -> None:
        """Release resources (LAMMPS instances)."""

    def versions(self) -> dict[str, str]:
        """Package versions a checkpoint of this engine depends on."""
        return {}


def rescale_atoms(atoms: Atoms, target_K: float) -> None:
    """Scale the momenta of ``atoms`` to ``target_K`` (no-op at zero or non-finite T)."""
    current = atoms.get_temperature()
    if current > 0 and math.isfinite(current):
        atoms.set_momenta(atoms.get_momenta() * math.sqrt(target_K / current))


def thermalize(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature_K``, zero total momentum, rescaled to
    exactly ``temperature_K`` (the start of every run, whatever the engine)."""
    _thermalize(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    rescale_atoms(atoms, temperature_K)
