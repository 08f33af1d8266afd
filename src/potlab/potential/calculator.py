"""ASE calculators over a :class:`~potlab.potential.Potential` and a
:class:`~potlab.potential.Committee`: one evaluation path (neighbour graph of the
structure at the model's cutoff, energy, autograd forces, stress for periodic cells), two
ways of reporting it. With ``skin`` (A) > 0 the neighbour list is a Verlet list
(:class:`~potlab.graph.skin.SkinNeighbourList`): searched again only when an atom has moved
more than half the skin since the last search, the same pairs as a fresh search."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from potlab.graph import build_graph
from potlab.graph.skin import SkinNeighbourList


class GraphModelCalculator(Calculator):
    """What every potlab calculator shares: ``model`` is a module with ``graph(frames)``
    and ``forward(graph, forces=True, stress=...)`` (a Potential or a Committee).
    Subclasses turn its outputs (numpy, float64) into ASE results with :meth:`results_from`
    and reduce the stress [..., 3, 3] (eV/A^3) with :meth:`stress_from`."""

    def __init__(self, model, skin: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.model = model.eval()
        self.skin = float(skin)
        self._nl: SkinNeighbourList | None = None

    def with_skin(self, skin: float) -> GraphModelCalculator:
        """This calculator (same model) with a Verlet list of ``skin`` (A) and no results."""
        new = copy.copy(self)
        new.skin, new._nl, new.results, new.atoms = float(skin), None, {}, None
        return new

    def graph(self, atoms):
        """The model's graph of ``atoms`` (through the Verlet list when ``skin`` > 0)."""
        if self.skin <= 0:
            return self.model.graph([atoms])
        if self._nl is None:
            self._nl = SkinNeighbourList(self.model.cutoff, self.skin)
        pairs = self._nl.pairs(atoms.positions, atoms.cell.array, atoms.pbc)
        return build_graph([atoms], self.model.cutoff, dtype=self.model.dtype,
                           pairs=[pairs]).to(self.model.device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties and bool(np.any(self.atoms.pbc))
        out = self.model(self.graph(self.atoms), forces=True, stress=want_stress)
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
