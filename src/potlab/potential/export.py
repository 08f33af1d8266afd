"""Export a trained potential to one ``torch.export`` file that runs without potlab's
model code or config: for LAMMPS bridges, other MD codes and other Python tools.

File (``.pt2``, written by ``torch.export.save``) holds one program::

    node_energy = program(positions, species, edge_index, shifts)

    positions   [N, 3]  float, Angstrom
    species     [N]     int64, atomic numbers
    edge_index  [2, E]  int64, sender i, receiver j; a full neighbour list within the cutoff
    shifts      [E, 3]  float, Cartesian periodic shift of the receiver image, Angstrom:
                        edge vector = positions[j] - positions[i] + shifts
    node_energy [N]     eV, per-atom energies including the reference energies E0

and, in its extra file ``potlab.json``, the cutoff (Angstrom), elements, dtype,
architecture and units. Forces are ``-d(sum node_energy)/d(positions)`` by autograd;
the stress is ``(1/V) sym(sum_i r_i (x) dE/dr_i + sum_e s_e (x) dE/ds_e)`` (strain
derivative through positions and shifts). :class:`ExportedCalculator` does exactly
that with vesin's neighbour list and needs nothing else from potlab.

Every architecture written in potlab exports (N and E are dynamic). MACE does not: its
e3nn layers are TorchScript modules that ``torch.export`` cannot trace. A MACE potential
exports instead as a mace-torch model file (:func:`export_mace`, ``potlab export --format
mace``): a ``ScaleShiftMACE`` with the potential's E0, shift and scale inside, saved as
mace-torch saves models (``torch.save`` of the module), so mace-torch's own
``MACECalculator``, its LAMMPS conversion and its fine-tuning read it and give potlab's
energies and forces. (``potential.model.mace`` alone is not that model: it has zero atomic
energies and the scale and shift are outside it.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress
from torch import nn

from potlab.allocator import keep_large_allocations
from potlab.atomic import atomic_open, atomic_path
from potlab.errors import InputError
from potlab.graph import GraphBatch, build_graph, neighbour_list

EXPORT_FORMAT = "potlab-export/1"


class ExportError(RuntimeError):
    """The architecture cannot be exported with ``torch.export``."""


class ExportFormatError(InputError):
    """The potential cannot be written in the requested format (a SchNet as a mace-torch file)."""


class _NodeEnergy(nn.Module):
    """The exported signature around a Potential (one frame, graph given as tensors)."""

    def __init__(self, potential):
        super().__init__()
        self.potential = potential

    def forward(self, positions, species, edge_index, shifts):
        g = GraphBatch(
            species=species, positions=positions, edge_index=edge_index,
            unit_shifts=torch.zeros_like(edge_index.t()), shifts=shifts,
            batch=torch.zeros_like(species), cell=positions.new_zeros(1, 3, 3),
            pbc=torch.zeros(1, 3, dtype=torch.bool, device=positions.device),
            n_atoms=torch.ones(1, dtype=torch.int64, device=positions.device) * species.shape[0],
        )
        return self.potential._node_energy(g)


def _example(potential, n_atoms: int = 12) -> Atoms:
    """A small random cluster with every element of the potential and enough edges."""
    rng = np.random.default_rng(0)
    numbers = [potential.elements[k % len(potential.elements)] for k in range(n_atoms)]
    spacing = 1.6
    grid = np.array([(i, j, k) for i in range(3) for j in range(3) for k in range(2)], dtype=float)
    positions = grid[:n_atoms] * spacing + rng.normal(0, 0.1, (n_atoms, 3))
    return Atoms(numbers=numbers, positions=positions)


def export_potential(potential, path: str | os.PathLike) -> Path:
    """Write ``potential`` as a ``torch.export`` program (see the module docstring).

    Raises:
        ExportError: the architecture cannot be traced by ``torch.export`` (MACE).
    """
    from torch.export import Dim, export

    potential = potential.eval()
    g = build_graph([_example(potential)], potential.cutoff, dtype=potential.dtype)
    n, e = Dim("n_atoms", min=1), Dim("n_edges", min=0)
    try:
        program = export(
            _NodeEnergy(potential), (g.positions, g.species, g.edge_index, g.shifts),
            dynamic_shapes={"positions": {0: n}, "species": {0: n}, "edge_index": {1: e}, "shifts": {0: e}},
        )
    except Exception as err:  # torch raises many kinds here
        raise ExportError(
            f"{potential.model_name}: torch.export cannot trace this architecture "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]})"
            + ("; write a mace-torch model file with export_mace (potlab export --format mace)"
               if potential.model_name == "mace" else "")
        ) from err
    meta = {
        "format": EXPORT_FORMAT, "model_name": potential.model_name, "cutoff": potential.cutoff,
        "elements": potential.elements, "dtype": str(potential.dtype).removeprefix("torch."),
        "inputs": ["positions [N,3] A", "species [N] Z", "edge_index [2,E] (i, j)", "shifts [E,3] A"],
        "output": "node_energy [N] eV", "metadata": getattr(potential, "metadata", {}),
    }
    path = Path(path)
    with atomic_path(path, suffix=".pt2") as tmp:
        torch.export.save(program, str(tmp), extra_files={"potlab.json": json.dumps(meta, default=str)})
    return path


def export_mace(potential, path: str | os.PathLike, dtype: str = "float64") -> Path:
    """Write a MACE ``potential`` as a mace-torch model file: a ``ScaleShiftMACE`` with the
    potential's E0 (``atomic_energies``), shift and scale inside, ``torch.save``'d whole as
    ``mace_run_train`` does (readable by ``mace.calculators.MACECalculator(model_paths=path)``).
    The file is written atomically.

    Raises:
        ExportFormatError: the potential is not a MACE potential.
    """
    from potlab.potential.potential import DTYPES

    if getattr(potential, "model_name", None) != "mace" or not hasattr(potential.model, "to_mace_torch"):
        name = getattr(potential, "model_name", type(potential).__name__)
        raise ExportFormatError(f"--format mace needs a MACE potential, this one is {name} "
                                f"(export it with --format pt2)")
    if dtype not in DTYPES:
        raise ExportFormatError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    model = potential.model.to_mace_torch(
        {int(z): float(e) for z, e in potential.e0.items()}, float(potential.shift),
        float(potential.scale), dtype=DTYPES[dtype],
    )
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(model, fh)
    return path


def load_exported(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """The exported program as a callable module, and its ``potlab.json`` metadata."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such exported model")
    extra = {"potlab.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    meta = json.loads(extra["potlab.json"] or "{}")
    if meta.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not a potlab export (format {EXPORT_FORMAT})")
    return program.module(), meta


class ExportedCalculator(Calculator):
    """ASE calculator over an exported file: energy, forces and stress from the program,
    vesin's neighbour list and autograd, with no potlab model code."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, path: str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        keep_large_allocations()
        self.program, self.meta = load_exported(path)
        self.cutoff = float(self.meta["cutoff"])
        self.dtype = getattr(torch, self.meta["dtype"])

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        i, j, S = neighbour_list(a, self.cutoff)
        periodic = bool(np.any(a.pbc))
        cell = np.asarray(a.cell.array) if periodic else np.zeros((3, 3))
        pos = torch.tensor(a.positions, dtype=self.dtype, requires_grad=True)
        shifts = torch.tensor(S @ cell, dtype=self.dtype, requires_grad=True)
        edges = torch.from_numpy(np.stack([i, j]))
        node_e = self.program(pos, torch.from_numpy(a.numbers.astype(np.int64)), edges, shifts)
        energy = node_e.sum()
        d_pos, d_shift = torch.autograd.grad(energy, [pos, shifts])
        e = float(energy.detach())
        self.results = {"energy": e, "free_energy": e,
                        "energies": node_e.detach().double().numpy(),
                        "forces": -d_pos.double().numpy()}
        if periodic:
            virial = pos.detach().double().T @ d_pos.double() + shifts.detach().double().T @ d_shift.double()
            stress = 0.5 * (virial + virial.T).numpy() / a.get_volume()
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
