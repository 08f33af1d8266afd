"""Verlet neighbour lists with a skin: build once within ``cutoff + skin`` and, while no atom
has moved more than half the skin since the build, get the list within ``cutoff`` by
filtering the stored pairs instead of searching again.

Why it is exact: a pair closer than ``cutoff`` now was closer than ``cutoff + 2 d`` at the
build, where ``d`` is the largest displacement since; with ``d <= skin / 2`` it is among the
stored pairs. Pairs come in one canonical order (sender, receiver, shift), with or without a
skin, so the graph, and the forces computed on it, are the same bit for bit as from a fresh
list. Positions are the MD's unwrapped positions (never wrapped back into the cell); a
changed cell forces a rebuild. Conventions as :mod:`potlab.graph.batch`.
"""

from __future__ import annotations

import numpy as np
from vesin import NeighborList


def canonical_pairs(points: np.ndarray, box: np.ndarray, periodic: np.ndarray, cutoff: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list (i, j, S) within ``cutoff`` (A) sorted by i, then j, then S."""
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, S = nl.compute(points=points, box=box, periodic=periodic.tolist(), quantities="ijS")
    i, j, S = i.astype(np.int64), j.astype(np.int64), S.astype(np.int64).reshape(-1, 3)
    if len(i) == 0:
        return i, j, S
    m = int(np.abs(S).max())
    w = 2 * m + 1
    n = int(max(i.max(), j.max())) + 1
    if float(n) * n * w**3 < 2**62:  # one int64 key: one argsort instead of a 5-key lexsort
        key = ((i * n + j) * w + (S[:, 0] + m)) * w + (S[:, 1] + m)
        order = np.argsort(key * w + (S[:, 2] + m))
    else:
        order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
    return i[order], j[order], S[order]


class SkinNeighbourList:
    """Neighbour list of one structure within ``cutoff`` (A), rebuilt only when an atom has
    moved more than ``skin / 2`` (A) since the last build (``skin = 0``: every call).

    :meth:`pairs` returns (i [E], j [E], S [E, 3]) for the given positions; ``builds``
    counts the searches done so far.
    """

    def __init__(self, cutoff: float, skin: float = 0.0) -> None:
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.builds = 0
        self._ref: np.ndarray | None = None
        self._box: np.ndarray | None = None

    def _build(self, positions, box, periodic) -> None:
        # a hair beyond the cutoff even without a skin, so that the one filter below (not the
        # search's own rounding) decides which pairs are in: the same rule in both modes
        self._i, self._j, self._S = canonical_pairs(positions, box, periodic,
                                                    self.cutoff + max(self.skin, 1e-6))
        self._ref, self._box = positions.copy(), box.copy()
        self._shift = self._S.astype(np.float64) @ box  # [E, 3] Cartesian shifts
        self.builds += 1

    def needs_build(self, positions: np.ndarray, box: np.ndarray) -> bool:
        if self._ref is None or self.skin == 0.0 or self._ref.shape != positions.shape:
            return True
        if not np.array_equal(box, self._box):
            return True
        moved = np.einsum("ij,ij->i", positions - self._ref, positions - self._ref)
        return bool(moved.max(initial=0.0) > (0.5 * self.skin) ** 2)

    def candidates(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The stored pairs within ``cutoff + skin`` (i, j, S, Cartesian shift [E, 3]),
        searched again first if an atom has moved too far: keeping those with
        ``|r_j - r_i + shift| < cutoff`` gives :meth:`pairs`. A caller filtering many lists
        at once (the batched engine, on its own tensors) uses this; ``builds`` tells it when
        the stored pairs changed."""
        positions = np.asarray(positions, dtype=np.float64)
        periodic = np.asarray(pbc, dtype=bool)
        box = np.asarray(cell, dtype=np.float64) if periodic.any() else np.zeros((3, 3))
        if self.needs_build(positions, box):
            self._build(positions, box, periodic)
        return self._i, self._j, self._S, self._shift

    def pairs(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs within the cutoff for ``positions`` [n, 3] (A), ``cell`` [3, 3], ``pbc`` [3]."""
        positions = np.asarray(positions, dtype=np.float64)
        i, j, S, shift = self.candidates(positions, cell, pbc)
        d = positions[j] - positions[i] + shift
        keep = np.einsum("ij,ij->i", d, d) < self.cutoff**2
        return i[keep], j[keep], S[keep]
