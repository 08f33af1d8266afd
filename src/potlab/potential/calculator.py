"""ASE calculator over a :class:`~potlab.potential.Potential`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress


class PotentialCalculator(Calculator):
    """Energy (eV), free_energy, per-atom energies, forces (eV/A) and, for periodic frames,
    stress (eV/A^3, Voigt, ASE sign convention) from a potlab Potential."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, potential, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential.eval()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties and bool(np.any(self.atoms.pbc))
        batch = self.potential.graph([self.atoms])
        out = self.potential(batch, forces=True, stress=want_stress)
        energy = float(out["energy"].detach()[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out["node_energy"].detach().cpu().double().numpy(),
            "forces": out["forces"].detach().cpu().double().numpy(),
        }
        if want_stress:
            s = out["stress"].detach().cpu().double().numpy()[0]
            self.results["stress"] = full_3x3_to_voigt_6_stress(s)
