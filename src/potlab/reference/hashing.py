"""Structure and settings hashes: the keys under which labels are cached.

A structure hash covers everything a reference method sees: atomic numbers, positions
(rounded to ``decimals`` Angstrom, default 1e-6 A), cell (rounded the same way), periodic
boundary conditions, total charge and spin (``atoms.info["charge"]``/``["spin"]``, after
the method's defaults are applied). Two structures with equal hashes get the same label.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from ase import Atoms

DECIMALS = 6


def _rounded(values: np.ndarray, decimals: int) -> np.ndarray:
    out = np.round(np.asarray(values, dtype=np.float64), decimals)
    out[out == 0.0] = 0.0  # -0.0 and 0.0 hash alike
    return out


def structure_hash(atoms: Atoms, charge: float = 0, spin: float = 0,
                   decimals: int = DECIMALS) -> str:
    """SHA-256 (hex) of numbers, positions and cell rounded to ``decimals`` Angstrom, pbc,
    charge (e) and spin (number of unpaired electrons)."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(_rounded(atoms.positions, decimals).tobytes())
    h.update(_rounded(atoms.cell.array, decimals).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.int8).tobytes())
    h.update(f"charge={float(charge):g};spin={float(spin):g}".encode())
    return h.hexdigest()


def settings_hash(method: str, settings: dict[str, Any]) -> str:
    """SHA-256 (hex, first 16 characters) of a method name and its settings (JSON, sorted
    keys): the same method with other settings is another cache entry."""
    text = json.dumps({"method": method, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
