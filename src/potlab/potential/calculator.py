"""ASE calculators over a :class:`~potlab.potential.Potential` and a
:class:`~potlab.potential.Committee`: one evaluation path (neighbour graph of the
structure at the model's cutoff, energy, autograd forces, stress for periodic cells), two
ways of reporting it."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress


class GraphModelCalculator(Calculator):
    """What every potlab calculator shares: ``model`` is a module with ``graph(frames)``
    and ``forward(graph, forces=True, stress=...)`` (a Potential or a Committee).
    Subclasses turn its outputs (numpy, float64) into ASE results with :meth:`results_from`
    and reduce the stress [..., 3, 3] (eV/A^3) with :meth:`stress_from`."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model.eval()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties and bool(np.any(self.atoms.pbc))
        out = self.model(self.model.graph([self.atoms]), forces=True, stress=want_stress)
        arrays = {k: v.detach().cpu().double().numpy() for k, v in out.items()}
        self.results = self.results_from(arrays)
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(self.stress_from(arrays["stress"]))

    def results_from(self, out: dict[str, np.ndarray]) -> dict[str, Any]:
        raise NotImplementedError

    def stress_from(self, stress: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class PotentialCalculator(GraphModelCalculator):
    """Energy (eV), free_energy, per-atom energies, forces (eV/A) and, for periodic frames,
    stress (eV/A^3, Voigt, ASE sign convention) from a potlab Potential."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, potential, **kwargs):
        super().__init__(potential, **kwargs)

    @property
    def potential(self):
        return self.model

    def results_from(self, out):
        energy = float(out["energy"][0])
        return {"energy": energy, "free_energy": energy, "energies": out["node_energy"],
                "forces": out["forces"]}

    def stress_from(self, stress):
        return stress[0]  # [1, 3, 3] -> [3, 3]
