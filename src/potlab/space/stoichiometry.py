"""Stoichiometries of a composition space: orders, factor grids, coprimality, element
combinations, and the exact total count C(n_elements, k) x (coprime k-tuples in 1..max)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from potlab.space.species import MAX_ATOMIC_NUMBER, SpaceError

MIN_ORDER, MAX_ORDER = 2, 4


def check_order(order: int) -> int:
    """Return ``order`` if it is 2, 3 or 4, else raise SpaceError."""
    if not isinstance(order, (int, np.integer)) or not MIN_ORDER <= int(order) <= MAX_ORDER:
        raise SpaceError(f"order must be 2, 3 or 4 (binary, ternary, quaternary), got {order!r}")
    return int(order)


def check_max_factor(max_factor: int) -> int:
    if not isinstance(max_factor, (int, np.integer)) or not 1 <= int(max_factor) <= 16:
        raise SpaceError(f"max_factor must be an integer in 1..16, got {max_factor!r}")
    return int(max_factor)


def combinations_array(n: int, k: int) -> np.ndarray:
    """All k-subsets of range(n) in lexicographic order, shape [C(n, k), k], int16."""
    arr = np.arange(n, dtype=np.int16)[:, None]
    for _ in range(k - 1):
        counts = (n - 1 - arr[:, -1]).astype(np.int64)
        total = int(counts.sum())
        rep = np.repeat(arr, counts, axis=0)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        last = rep[:, -1].astype(np.int64) + 1 + (np.arange(total) - starts)
        arr = np.concatenate([rep, last[:, None].astype(np.int16)], axis=1)
    return arr


@lru_cache(maxsize=32)
def stoichiometry_grid(order: int, max_factor: int) -> np.ndarray:
    """All factor tuples in ``1..max_factor``, C order, shape [max_factor**order, order]."""
    axes = [np.arange(1, max_factor + 1, dtype=np.int16)] * order
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, order)


@lru_cache(maxsize=32)
def coprime_mask(order: int, max_factor: int) -> np.ndarray:
    """Boolean [max_factor**order]: True where gcd of the factor tuple is 1."""
    return np.gcd.reduce(stoichiometry_grid(order, max_factor), axis=1) == 1


def count_total(order: int, max_factor: int = 8, n_elements: int = MAX_ATOMIC_NUMBER) -> int:
    """C(n_elements, order) times the number of coprime order-tuples in 1..max_factor."""
    order, max_factor = check_order(order), check_max_factor(max_factor)
    return math.comb(n_elements, order) * int(coprime_mask(order, max_factor).sum())
