"""Steered MD (seed 002, section 2.2.1): a harmonic spring pulls two atoms or the centres of
two groups apart while its rest length (the anchor) moves at constant velocity.

    U_spring = k/2 (r - L(t))^2,   L(t) = L0 + v t,   f = k (L - r)   (tension, eV/A)
    W(t) = integral f dL = integral f v dt                             (work done, eV)

``r`` is the distance between the mass-weighted centres (minimum image in periodic cells).
The spring is an ASE calculator wrapper: energy = base + U_spring, forces = base + spring
forces; stress is the base calculator's (the spring's virial is left out). The activation
energy of a pulling run is read from the work curve as its maximum, max_t W(t) (seed 002,
Fig. 2b: the work to break the chain); :func:`activation_energy` returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.geometry import find_mic

STEERED_COLUMNS = ("step", "time_ps", "anchor_A", "spring_length_A", "spring_force_eV_A",
                   "work_eV")


def separation(atoms: Atoms, group_a: Sequence[int], group_b: Sequence[int]) -> np.ndarray:
    """Vector (A) from the mass-weighted centre of ``group_a`` to that of ``group_b``
    (minimum image in periodic cells): the spring's collective variable is its length."""
    a, b = np.asarray(group_a, dtype=int), np.asarray(group_b, dtype=int)
    m = atoms.get_masses()
    d = m[b] @ atoms.positions[b] / m[b].sum() - m[a] @ atoms.positions[a] / m[a].sum()
    if atoms.pbc.any():
        d = find_mic(d[None], atoms.cell, atoms.pbc)[0][0]
    return d


def tension(atoms: Atoms, forces: np.ndarray, group_a: Sequence[int],
            group_b: Sequence[int]) -> np.ndarray:
    """The force (eV/A) with which a potential pulls the two groups together along the line
    between their centres: ``((F_a - F_b) . u) / 2``, ``F_a`` the sum of ``forces`` over
    ``group_a``, ``u`` the unit vector from a's centre to b's. It is what the spring holds
    against when the pull is slow (the spring force ``f`` at equilibrium), positive when the
    chain between them is stretched. ``forces``: [n_atoms, 3], or [n_models, n_atoms, 3]
    for one value per model."""
    d = separation(atoms, group_a, group_b)
    u = d / np.linalg.norm(d)
    f = np.asarray(forces, dtype=float)
    pull = f[..., list(group_a), :].sum(axis=-2) - f[..., list(group_b), :].sum(axis=-2)
    return pull @ u / 2


class SteeredSpring(Calculator):
    """Wrap ``base`` with a moving harmonic spring between ``group_a`` and ``group_b``.

    ``k`` in eV/A^2, ``velocity_A_ps`` in A/ps, ``rest_length_A`` (A) at time 0 (None: the
    distance in the first structure the wrapper sees); the anchor is ``rest_length_A + v * time``.
    The runner sets :attr:`time_fs` to t_(n+1) before step n -> n+1: results are cached by
    positions, so the first half-kick uses F(x_n, t_n) from the previous step and the second
    F(x_(n+1), t_(n+1)), which is velocity Verlet for a time-dependent Hamiltonian.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, base: Calculator, group_a: Sequence[int], group_b: Sequence[int],
                 k: float = 10.0, velocity_A_ps: float = 1.0,
                 rest_length_A: float | None = None) -> None:
        super().__init__()
        self.base = base
        self.group_a = np.asarray(group_a, dtype=int)
        self.group_b = np.asarray(group_b, dtype=int)
        if len(set(self.group_a) & set(self.group_b)):
            raise ValueError("steered MD: group_a and group_b share atoms")
        self.k = float(k)
        self.velocity_A_fs = float(velocity_A_ps) / 1000.0
        self.rest_length_A = rest_length_A
        self.time_fs = 0.0
        self.work_eV = 0.0
        self._last: tuple[float, float] | None = None  # (anchor, force) at the last record

    def anchor_A(self, time_fs: float | None = None) -> float:
        """Rest length L(t) in A."""
        t = self.time_fs if time_fs is None else time_fs
        return float(self.rest_length_A) + self.velocity_A_fs * t

    def separation(self, atoms: Atoms) -> np.ndarray:
        """Vector (A) from the centre of group_a to the centre of group_b."""
        return separation(atoms, self.group_a, self.group_b)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if self.rest_length_A is None:
            self.rest_length_A = float(np.linalg.norm(self.separation(atoms)))
        energy = self.base.get_potential_energy(atoms)
        forces = np.array(self.base.get_forces(atoms), dtype=float)
        d = self.separation(atoms)
        r = float(np.linalg.norm(d))
        L = self.anchor_A()
        u = d / r if r > 0 else np.zeros(3)
        m = atoms.get_masses()
        pull = self.k * (r - L) * u  # dU/d(centre_b), eV/A
        forces[self.group_a] += pull * (m[self.group_a] / m[self.group_a].sum())[:, None]
        forces[self.group_b] -= pull * (m[self.group_b] / m[self.group_b].sum())[:, None]
        spring_energy = 0.5 * self.k * (r - L) ** 2
        self.results = {
            "energy": energy + spring_energy, "free_energy": energy + spring_energy,
            "forces": forces, "spring_energy": spring_energy,
            "spring_length": r, "spring_force": self.k * (L - r), "anchor": L,
            "base_energy": energy,
        }
        if "stress" in properties and atoms.pbc.all():
            self.results["stress"] = self.base.get_stress(atoms)

    def record(self, atoms: Atoms) -> dict[str, float]:
        """Spring length, force and cumulative work at the current time (call once per step
        after the step); the work integrates f dL by the trapezoidal rule."""
        atoms.get_potential_energy()  # make sure results are for these positions and time
        res = self.results
        L, f = res["anchor"], res["spring_force"]
        if self._last is not None:
            L0, f0 = self._last
            self.work_eV += 0.5 * (f + f0) * (L - L0)
        self._last = (L, f)
        return {"anchor_A": L, "spring_length_A": res["spring_length"],
                "spring_force_eV_A": f, "work_eV": self.work_eV}

    def state(self) -> dict:
        return {"work_eV": self.work_eV, "last": self._last, "rest_length_A": self.rest_length_A}

    def restore(self, state: dict) -> None:
        self.work_eV = state["work_eV"]
        self._last = state["last"]
        self.rest_length_A = state["rest_length_A"]


def activation_energy(work_eV: Sequence[float]) -> float:
    """Activation energy (eV) of a pulling run: the maximum of the work profile W(t)."""
    w = np.asarray(work_eV, dtype=float)
    if w.size == 0:
        raise ValueError("activation_energy: empty work profile")
    return float(np.nanmax(w))
