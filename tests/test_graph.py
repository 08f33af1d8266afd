"""Neighbour graph: vesin's periodic neighbour list against ASE's, batching offsets."""

import numpy as np
import torch
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list

from potlab.graph import build_graph, collate, edge_vectors


def _sorted_lengths(vec):
    return np.sort(np.linalg.norm(vec, axis=1))


def test_triclinic_cell_matches_ase():
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 1, 1))
    atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [0.4, 0, 0], [0.3, 0.2, 0]]), scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    cutoff = 5.0  # longer than the cell: many images of the same atom
    g = build_graph([atoms], cutoff)
    vec, _ = edge_vectors(g)
    i, D = neighbor_list("iD", atoms, cutoff)
    assert g.edge_index.shape[1] == len(i)
    np.testing.assert_allclose(_sorted_lengths(vec.numpy()), _sorted_lengths(D), atol=1e-10)
    # every receiver of sender 0 at the same distances as ASE's
    mine = _sorted_lengths(vec.numpy()[g.edge_index[0].numpy() == 0])
    np.testing.assert_allclose(mine, _sorted_lengths(D[i == 0]), atol=1e-10)


def test_molecule_without_cell_and_batch_offsets():
    mol = molecule("CH3CH2OH")
    crystal = bulk("NaCl", "rocksalt", a=5.64)
    g = build_graph([mol, crystal, mol], 3.0)
    assert g.num_graphs == 3 and g.num_nodes == 2 * len(mol) + len(crystal)
    assert torch.equal(g.n_atoms, torch.tensor([9, 2, 9]))
    # edges never cross frames
    assert torch.equal(g.batch[g.edge_index[0]], g.batch[g.edge_index[1]])
    # collate of single graphs equals the batched build
    c = collate([build_graph([a], 3.0) for a in (mol, crystal, mol)])
    for name in ("species", "positions", "edge_index", "batch", "cell", "n_atoms"):
        assert torch.equal(getattr(c, name), getattr(g, name)), name
    assert torch.allclose(c.shifts, g.shifts)
    # a non-periodic molecule has all pairs within the cutoff and no shifts
    i = neighbor_list("i", mol, 3.0)
    assert (g.batch[g.edge_index[0]] == 0).sum() == len(i)
