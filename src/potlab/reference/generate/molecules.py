"""Molecules in a periodic frame: covalent connectivity across boundaries, made whole.

Two atoms are bonded when closer (minimum image) than ``scale`` times the sum of their
covalent radii (ASE's ``natural_cutoffs``). A molecule is a connected component of the
bond graph; :func:`whole_molecules` returns each molecule's positions unwrapped so that
bonds never straddle the cell (A), walking the bond graph with the periodic shifts.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from ase import Atoms

BOND_SCALE = 1.2


def bonds(atoms: Atoms, scale: float = BOND_SCALE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bonded pairs ``(i, j, shift)``: ``i``, ``j`` (n_bonds,) and the integer cell shift
    (n_bonds, 3) such that ``positions[j] + shift @ cell - positions[i]`` is the bond."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    cutoffs = natural_cutoffs(atoms, mult=scale)
    return neighbor_list("ijS", atoms, cutoffs, self_interaction=False)


def molecule_labels(atoms: Atoms, scale: float = BOND_SCALE) -> np.ndarray:
    """Molecule number of every atom [n_atoms]: the connected components of the bond graph
    (scipy), numbered in the order of their first atom."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i, j, _ = bonds(atoms, scale)
    n = len(atoms)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = {}  # renumber by first atom, whatever order scipy labels in
    for atom, lab in enumerate(labels):
        first.setdefault(int(lab), len(first))
    return np.array([first[int(lab)] for lab in labels], dtype=int)


def molecule_indices(atoms: Atoms, scale: float = BOND_SCALE) -> list[np.ndarray]:
    """Atom indices of every molecule (connected component), ordered by first atom."""
    labels = molecule_labels(atoms, scale)
    return [np.flatnonzero(labels == m) for m in range(labels.max() + 1 if len(labels) else 0)]


def whole_molecules(atoms: Atoms, scale: float = BOND_SCALE) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(indices, positions)]`` per molecule, positions (n, 3) A made whole across the
    periodic boundaries (each atom placed next to the bonded atom it was reached from)."""
    i, j, shift = bonds(atoms, scale)
    cell = atoms.cell.array
    pos = atoms.positions
    edges: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(len(atoms))]
    for a, b, s in zip(i, j, shift):
        edges[a].append((b, pos[b] + s @ cell - pos[a]))
    out = []
    for idx in molecule_indices(atoms, scale):
        placed = {int(idx[0]): pos[idx[0]].copy()}
        queue = deque([int(idx[0])])
        while queue:
            a = queue.popleft()
            for b, vec in edges[a]:
                if b not in placed:
                    placed[b] = placed[a] + vec
                    queue.append(b)
        out.append((idx, np.array([placed[int(k)] for k in idx])))
    return out


def centre_of_mass(atoms: Atoms, indices: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Mass-weighted centre (A) of whole-molecule ``positions`` of atoms ``indices``."""
    masses = atoms.get_masses()[indices]
    return masses @ positions / masses.sum()
