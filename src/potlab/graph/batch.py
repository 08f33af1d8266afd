"""GraphBatch: species, positions, edges with periodic shifts, batch index and cells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from ase import Atoms
from vesin import NeighborList


@dataclass
class GraphBatch:
    """Several frames as one disconnected graph.

    species      [n_atoms]        atomic numbers (int64)
    positions    [n_atoms, 3]     Angstrom
    edge_index   [2, n_edges]     sender i, receiver j (int64)
    unit_shifts  [n_edges, 3]     integer cell translations S of the receiver image
    shifts       [n_edges, 3]     Cartesian shift S @ cell of the edge's frame, Angstrom
    batch        [n_atoms]        frame index of each atom (int64)
    cell         [n_frames, 3, 3] rows are lattice vectors; zeros for a non-periodic frame
    pbc          [n_frames, 3]    periodic directions (bool)
    n_atoms      [n_frames]       atoms per frame (int64)
    """

    species: torch.Tensor
    positions: torch.Tensor
    edge_index: torch.Tensor
    unit_shifts: torch.Tensor
    shifts: torch.Tensor
    batch: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    n_atoms: torch.Tensor

    @property
    def num_graphs(self) -> int:
        return self.n_atoms.shape[0]  # no int(): a symbolic size under torch.export

    @property
    def num_nodes(self) -> int:
        return self.species.shape[0]

    def to(self, device=None, dtype: torch.dtype | None = None) -> GraphBatch:
        """Move to a device; ``dtype`` casts the floating tensors only."""
        out = {}
        for f in fields(self):
            t = getattr(self, f.name)
            if t.is_floating_point() and dtype is not None:
                t = t.to(device=device, dtype=dtype)
            else:
                t = t.to(device=device)
            out[f.name] = t
        return GraphBatch(**out)

    def with_geometry(self, positions: torch.Tensor, cell: torch.Tensor) -> GraphBatch:
        """The same graph with new positions and cells (shifts recomputed from cells).

        Used by :class:`~potlab.potential.Potential` to apply a strain for the stress.
        """
        edge_frame = self.batch[self.edge_index[0]]
        shifts = torch.einsum("ek,ekl->el", self.unit_shifts.to(cell.dtype), cell[edge_frame])
        return replace(self, positions=positions, cell=cell, shifts=shifts)


def edge_vectors(batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge vectors [n_edges, 3] (Angstrom, from sender to receiver image) and lengths
    [n_edges]."""
    i, j = batch.edge_index[0], batch.edge_index[1]
    vec = batch.positions[j] - batch.positions[i] + batch.shifts
    return vec, torch.linalg.norm(vec, dim=-1)


def neighbour_list(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list of one frame: (i, j, S) with |r_j + S @ cell - r_i| < cutoff.

    Periodic directions follow ``atoms.pbc``; a non-periodic frame needs no cell.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if pbc.any():
        box = np.asarray(atoms.cell.array, dtype=np.float64)
    else:
        box = np.zeros((3, 3))
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, S = nl.compute(points=positions, box=box, periodic=pbc.tolist(), quantities="ijS")
    return i.astype(np.int64), j.astype(np.int64), S.astype(np.int64)


def collate(graphs: Sequence[GraphBatch]) -> GraphBatch:
    """Concatenate precomputed graphs into one batch (node and frame indices offset)."""
    node_offsets = torch.cumsum(torch.tensor([0] + [g.num_nodes for g in graphs[:-1]]), 0)
    frame_offsets = torch.cumsum(torch.tensor([0] + [g.num_graphs for g in graphs[:-1]]), 0)
    return GraphBatch(
        species=torch.cat([g.species for g in graphs]),
        positions=torch.cat([g.positions for g in graphs]),
        edge_index=torch.cat([g.edge_index + o for g, o in zip(graphs, node_offsets)], dim=1),
        unit_shifts=torch.cat([g.unit_shifts for g in graphs]),
        shifts=torch.cat([g.shifts for g in graphs]),
        batch=torch.cat([g.batch + o for g, o in zip(graphs, frame_offsets)]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        n_atoms=torch.cat([g.n_atoms for g in graphs]),
    )


def replicate(batch: GraphBatch, copies: int) -> GraphBatch:
    """``copies`` disjoint copies of a batch, one after another: node, edge and frame rows
    of copy ``m`` are the contiguous block ``m`` of every tensor (a committee evaluates
    member ``m`` on copy ``m``, see :mod:`potlab.models.grouped`)."""
    m = int(copies)
    k = torch.arange(m, device=batch.species.device)
    return GraphBatch(
        species=batch.species.repeat(m),
        positions=batch.positions.repeat(m, 1),
        edge_index=(batch.edge_index[:, None, :] + (k * batch.num_nodes)[None, :, None]).reshape(2, -1),
        unit_shifts=batch.unit_shifts.repeat(m, 1),
        shifts=batch.shifts.repeat(m, 1),
        batch=(batch.batch[None, :] + (k * batch.num_graphs)[:, None]).reshape(-1),
        cell=batch.cell.repeat(m, 1, 1),
        pbc=batch.pbc.repeat(m, 1),
        n_atoms=batch.n_atoms.repeat(m),
    )


def build_graph(
    frames: Sequence[Atoms], cutoff: float, dtype: torch.dtype = torch.float64,
    pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> GraphBatch:
    """Batch ASE frames into one :class:`GraphBatch` with a radial ``cutoff`` (Angstrom).
    ``pairs``: each frame's neighbour list (i, j, S) within ``cutoff``, already found (a
    :class:`~potlab.graph.skin.SkinNeighbourList`); default: searched here."""
    species, positions, senders, receivers, unit_shifts = [], [], [], [], []
    batch, cells, pbcs, n_atoms = [], [], [], []
    offset = 0
    for k, atoms in enumerate(frames):
        n = len(atoms)
        i, j, S = neighbour_list(atoms, cutoff) if pairs is None else pairs[k]
        species.append(atoms.numbers.astype(np.int64))
        positions.append(np.asarray(atoms.positions, dtype=np.float64))
        senders.append(i + offset)
        receivers.append(j + offset)
        unit_shifts.append(S)
        batch.append(np.full(n, k, dtype=np.int64))
        pbc = np.asarray(atoms.pbc, dtype=bool)
        cells.append(np.asarray(atoms.cell.array, dtype=np.float64) if pbc.any() else np.zeros((3, 3)))
        pbcs.append(pbc)
        n_atoms.append(n)
        offset += n
    edge_index = torch.from_numpy(np.stack([np.concatenate(senders), np.concatenate(receivers)]))
    us = torch.from_numpy(np.concatenate(unit_shifts).reshape(-1, 3))
    cell = torch.from_numpy(np.stack(cells)).to(dtype)
    b = torch.from_numpy(np.concatenate(batch))
    shifts = torch.einsum("ek,ekl->el", us.to(dtype), cell[b[edge_index[0]]])
    return GraphBatch(
        species=torch.from_numpy(np.concatenate(species)),
        positions=torch.from_numpy(np.concatenate(positions)).to(dtype),
        edge_index=edge_index,
        unit_shifts=us,
        shifts=shifts,
        batch=b,
        cell=cell,
        pbc=torch.from_numpy(np.stack(pbcs)),
        n_atoms=torch.tensor(n_atoms, dtype=torch.int64),
    )
