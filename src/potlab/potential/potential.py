"""Potential: per-element reference energies + a registered model, with autograd forces
and stress, saved as one file (read back by :mod:`potlab.potential.loading`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from potlab.allocator import keep_large_allocations
from potlab.atomic import atomic_open
from potlab.graph import GraphBatch, build_graph
from potlab.models import build_model

FORMAT = "potlab-potential/1"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class Float64Buffers(nn.Module):
    """Keeps the buffers named in ``float64_buffers`` in float64 when the module is cast
    (``.float()``, ``.to(torch.float32)``): reference energies of thousands of eV lose meV
    in float32, and so would every total energy and an NVE drift measured from it. Moving
    devices still moves them."""

    float64_buffers: tuple[str, ...] = ()

    def _apply(self, fn, recurse=True):
        keep = {k: getattr(self, k) for k in self.float64_buffers}
        out = super()._apply(fn, recurse)
        device = fn(torch.zeros(0, dtype=torch.float64)).device
        for k, v in keep.items():
            self._buffers[k] = v.to(device=device, dtype=torch.float64)
        return out


class Potential(Float64Buffers):
    """Total energy of a frame (eV) = sum over atoms of E0[Z_i] + shift + scale * model_i.

    ``e0`` maps atomic number -> eV; ``shift`` (eV/atom) and ``scale`` (eV) put the model's
    output on the scale of the training data (mean residual per-atom energy, RMS force).
    The model runs in the potential's dtype; E0, shift, scale and the energies are float64
    (forces and stress keep the model's dtype).
    """

    float64_buffers = ("e0_table", "shift", "scale")

    def __init__(
        self,
        model_name: str,
        model_params: dict[str, Any],
        elements: list[int],
        e0: dict[int, float] | None = None,
        shift: float = 0.0,
        scale: float = 1.0,
        avg_num_neighbors: float = 10.0,
    ):
        super().__init__()
        keep_large_allocations()  # large systems: linear cost (see potlab.allocator)
        self.model_name = model_name
        self.elements = sorted(int(z) for z in elements)
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.model = build_model(model_name, model_params, self.elements, self.avg_num_neighbors)
        self.model_params = self.model.config.model_dump()
        table = torch.zeros(119, dtype=torch.float64)
        for z, e in (e0 or {}).items():
            table[int(z)] = float(e)
        self.register_buffer("e0_table", table)
        self.register_buffer("shift", torch.tensor(float(shift), dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))
        self.metadata: dict[str, Any] = {}

    @property
    def cutoff(self) -> float:
        return float(self.model.cutoff)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def e0(self) -> dict[int, float]:
        return {z: float(self.e0_table[z]) for z in self.elements}

    def graph(self, frames) -> GraphBatch:
        """Neighbour graph of ASE frames at this potential's cutoff and dtype."""
        return build_graph(frames, self.cutoff, dtype=self.dtype).to(self.e0_table.device)

    def forward(
        self,
        batch: GraphBatch,
        forces: bool = True,
        stress: bool = False,
        training: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Energies [n_frames] (eV), forces [n_atoms, 3] (eV/A), stress [n_frames, 3, 3]
        (eV/A^3, zero for non-periodic frames), node_energy [n_atoms] (eV).

        ``training=True`` keeps the graph of the derivatives for a loss on forces. The batch
        is moved to the potential's device (a no-op when it is there already).
        """
        batch = batch.to(device=self.e0_table.device, dtype=self.dtype)
        return energy_and_derivatives(self._node_energy, batch, forces, stress, training)

    @property
    def device(self) -> torch.device:
        return self.e0_table.device

    def _node_energy(self, graph: GraphBatch) -> torch.Tensor:
        """Per-atom energies [n_atoms], float64 (eV)."""
        return self.e0_table[graph.species] + self.shift + self.scale * self.model(graph).double()

    def calculator(self, **kwargs):
        """This potential as an ASE calculator."""
        from potlab.potential.calculator import PotentialCalculator

        return PotentialCalculator(self, **kwargs)

    # ---- persistence -------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model_name": self.model_name,
            "model_params": self.model_params,
            "elements": self.elements,
            "avg_num_neighbors": self.avg_num_neighbors,
            "e0": {int(z): float(e) for z, e in self.e0.items()},
            "shift": float(self.shift),
            "scale": float(self.scale),
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Potential:
        pot = cls(
            spec["model_name"], spec["model_params"], spec["elements"], e0=spec["e0"],
            shift=spec["shift"], scale=spec["scale"], avg_num_neighbors=spec["avg_num_neighbors"],
        )
        return pot.to(DTYPES[spec.get("dtype", "float64")])

    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
        """Write spec + weights atomically (temp file, then rename)."""
        path = Path(path)
        state = {
            "spec": self.spec(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "metadata": {**self.metadata, **(metadata or {})},
        }
        with atomic_open(path, "wb") as fh:
            torch.save(state, fh)
        return path


def energy_and_derivatives(
    node_energy, batch: GraphBatch, forces: bool, stress: bool, training: bool
) -> dict[str, torch.Tensor]:
    """Frame energies from ``node_energy(graph) -> [n_atoms]`` and their derivatives:
    forces -dE/dR and stress (1/V) dE/d(strain) by autograd, one backward pass for the
    whole batch (eV, eV/A, eV/A^3; zero stress for non-periodic frames)."""
    dtype = batch.positions.dtype
    positions = batch.positions.detach().requires_grad_(forces or stress)
    cell = batch.cell
    inputs = [positions]
    if stress:
        displacement = torch.zeros(
            (batch.num_graphs, 3, 3), dtype=dtype, device=positions.device, requires_grad=True
        )
        sym = 0.5 * (displacement + displacement.transpose(1, 2))  # [n_frames, 3, 3]
        positions = positions + torch.einsum("ni,nij->nj", positions, sym[batch.batch])
        cell = cell + torch.bmm(cell, sym)
        inputs.append(displacement)
    node_e = node_energy(batch.with_geometry(positions, cell))  # [n_atoms]
    energy = torch.zeros(batch.num_graphs, dtype=node_e.dtype, device=node_e.device)
    energy = energy.index_add(0, batch.batch, node_e)
    out = {"energy": energy, "node_energy": node_e}
    if forces or stress:
        grads = torch.autograd.grad(energy.sum(), inputs, create_graph=training, retain_graph=training)
        if forces:
            out["forces"] = -grads[0].to(dtype)
        if stress:
            volume = torch.linalg.det(batch.cell).abs()  # [n_frames]
            safe = torch.where(volume > 0, volume, torch.ones_like(volume))
            s = grads[1].to(dtype) / safe[:, None, None]
            out["stress"] = torch.where((volume > 0)[:, None, None], s, torch.zeros_like(s))
    return out


def predict(
    potential: Potential, frames, batch_size: int = 16, stress: bool = False
) -> dict[str, np.ndarray]:
    """Evaluate ``potential`` on ASE frames in batches.

    Returns energy [n_frames] (eV), forces [sum n_atoms, 3] (eV/A, frames concatenated),
    n_atoms [n_frames] and, with ``stress=True``, stress [n_frames, 3, 3] (eV/A^3).
    """
    graphs = [potential.graph([a]) for a in frames]
    return predict_graphs(potential, graphs, batch_size, stress)


def predict_graphs(potential: Potential, graphs, batch_size: int = 16, stress: bool = False):
    """As :func:`predict` on precomputed one-frame graphs."""
    import numpy as np

    from potlab.graph import collate

    energy, forces, stresses, n_atoms = [], [], [], []
    for k in range(0, len(graphs), batch_size):
        batch = collate(graphs[k : k + batch_size])
        out = potential(batch, forces=True, stress=stress)
        energy.append(out["energy"].detach().double().cpu().numpy())
        forces.append(out["forces"].detach().double().cpu().numpy())
        n_atoms.append(batch.n_atoms.cpu().numpy())
        if stress:
            stresses.append(out["stress"].detach().double().cpu().numpy())
    res = {
        "energy": np.concatenate(energy) if energy else np.zeros(0),
        "forces": np.concatenate(forces) if forces else np.zeros((0, 3)),
        "n_atoms": np.concatenate(n_atoms) if n_atoms else np.zeros(0, dtype=int),
    }
    if stress:
        res["stress"] = np.concatenate(stresses) if stresses else np.zeros((0, 3, 3))
    return res
