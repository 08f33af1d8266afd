"""The ASE engine: each replica is an ``ase.Atoms`` advanced by an ASE integrator
(:mod:`potlab.md.ensembles`) with any ASE calculator; steered MD wraps the calculator in a
:class:`~potlab.md.steered.SteeredSpring`. Its checkpoint state is the exact float64
positions, momenta and cell, and the integrator's variables saved by
:func:`~potlab.md.ensembles.dynamics_state` (which refuses what it cannot restore exactly).
"""

from __future__ import annotations

import logging
from typing import Any

import ase
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from potlab.md.engine import Engine, Run, rescale_atoms
from potlab.md.ensembles import dynamics_state, make_dynamics, restore_dynamics_state
from potlab.md.protocol import MDProtocol
from potlab.md.steered import SteeredSpring
from potlab.md.trajectory import snapshot

log = logging.getLogger(__name__)


class ASEEngine(Engine):
    """ASE dynamics with ``calculator`` (shared by the runs it advances, one at a time)."""

    name = "ase"

    def __init__(self, calculator: Calculator, protocol: MDProtocol) -> None:
        self.calculator, self.protocol = calculator, protocol

    def versions(self) -> dict[str, str]:
        return {"ase": ase.__version__}

    def start(self, runs: list[Run]) -> None:
        p = self.protocol
        for r in runs:
            atoms = r.atoms.copy()
            spring = None
            if p.steered is not None:
                s = p.steered
                s.check_atoms(len(atoms))
                spring = SteeredSpring(self.calculator, s.group_a, s.group_b, s.k_eV_A2,
                                       s.velocity_A_ps, s.rest_length_A)
            atoms.calc = spring or self.calculator
            st = r.engine_state
            if st is not None:
                atoms.set_cell(st["cell"])
                atoms.set_positions(st["positions"])
                atoms.set_momenta(st["momenta"])
                if spring is not None:
                    spring.restore(st["spring"])
            elif spring is not None:
                spring.time_fs = 0.0
                r.steer_rows.append({"step": 0, "time_ps": 0.0, **spring.record(atoms)})
            r.data.update(atoms=atoms, spring=spring, dyn=None, phase=None,
                          pending=None if st is None else st["dynamics"])

    def _dynamics(self, r: Run, phase: str):
        d = r.data
        if d["phase"] != phase:
            d["dyn"] = make_dynamics(d["atoms"], self.protocol, r.temperature_K, r.rng,
                                     ensemble="nve" if phase == "ramp" else None)
            d["phase"] = phase
            pending = d.pop("pending", None)
            d["pending"] = None
            if pending is not None and pending["phase"] == phase:
                restore_dynamics_state(d["dyn"], pending["state"])
        return d["dyn"]

    def advance(self, runs: list[Run], n: int, phase: str, stress: bool) -> None:
        dt = self.protocol.timestep_fs
        for r in runs:
            dyn = self._dynamics(r, phase)
            atoms, spring = r.data["atoms"], r.data["spring"]
            for k in range(n):
                step = r.step + k
                if spring is not None:
                    spring.time_fs = step * dt
                    atoms.get_forces()
                    spring.time_fs = (step + 1) * dt
                dyn.step()
                if spring is not None:
                    r.steer_rows.append({"step": step + 1, "time_ps": (step + 1) * dt / 1000,
                                         **spring.record(atoms)})

    def frames(self, runs: list[Run], stress: bool = True) -> list[Atoms]:
        out = []
        for r in runs:
            atoms = r.data["atoms"]
            atoms.get_potential_energy()
            atoms.get_forces()
            calc = atoms.calc
            if stress and atoms.pbc.all() and "stress" in getattr(calc, "implemented_properties", ()):
                try:
                    atoms.get_stress()
                except Exception as err:  # noqa: BLE001 - lists stress but cannot give it
                    log.debug("no stress from %s: %s", type(calc).__name__, err)
            out.append(snapshot(atoms, r.step, r.step * self.protocol.timestep_fs))
        return out

    def rescale(self, run: Run, target_K: float) -> None:
        rescale_atoms(run.data["atoms"], target_K)

    def state(self, run: Run) -> dict[str, Any]:
        d = run.data
        atoms, dyn = d["atoms"], d["dyn"]
        dynamics = None
        if dyn is not None:
            def rebuild():
                twin = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                             pbc=atoms.pbc, momenta=atoms.get_momenta(), masses=atoms.get_masses())
                return make_dynamics(twin, self.protocol, run.temperature_K,
                                     np.random.default_rng(),
                                     ensemble="nve" if d["phase"] == "ramp" else None)
            dynamics = {"phase": d["phase"], "state": dynamics_state(dyn, rebuild)}
        elif d.get("pending") is not None:
            dynamics = d["pending"]
        return {"positions": atoms.get_positions(), "momenta": atoms.get_momenta(),
                "cell": atoms.cell.array.copy(), "dynamics": dynamics,
                "spring": d["spring"].state() if d["spring"] is not None else None}
