"""Isolated atoms (one per element, for E0) and isolated molecules cut from a periodic frame."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from pydantic import BaseModel, ConfigDict, Field

from potlab.reference.generate.molecules import BOND_SCALE, whole_molecules


class IsolatedParams(BaseModel):
    """``box``: cubic cell edge (A) for periodic copies, or None for a non-periodic
    structure (no cell); ``bond_scale``: covalent-radius multiplier for connectivity."""

    model_config = ConfigDict(extra="forbid")
    box: float | None = Field(None, gt=0, description="A")
    bond_scale: float = Field(BOND_SCALE, gt=0)


def isolated_atoms(elements: Iterable[str | int], params: IsolatedParams | None = None
                   ) -> list[Atoms]:
    """One single-atom structure per distinct element (in first-seen order), marked
    ``config_type="IsolatedAtom"`` as MACE expects for E0."""
    p = params or IsolatedParams()
    out, seen = [], set()
    for el in elements:
        z = el if isinstance(el, int) else atomic_numbers[el]
        if z in seen:
            continue
        seen.add(z)
        atoms = Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
        _box(atoms, p.box)
        atoms.info["config_type"] = "IsolatedAtom"
        out.append(atoms)
    return out


def isolated_molecules(frame: Atoms, params: IsolatedParams | None = None) -> list[Atoms]:
    """Every molecule of a periodic ``frame`` as its own structure, made whole across
    the boundaries and centred (in ``params.box`` if given), ``config_type="molecule"``."""
    p = params or IsolatedParams()
    out = []
    for idx, pos in whole_molecules(frame, p.bond_scale):
        mol = Atoms(numbers=frame.numbers[idx], positions=pos)
        mol.positions -= mol.positions.mean(axis=0)
        _box(mol, p.box)
        mol.info["config_type"] = "molecule"
        out.append(mol)
    return out


def _box(atoms: Atoms, box: float | None) -> None:
    if box is None:
        return
    atoms.cell = np.eye(3) * box
    atoms.pbc = True
    atoms.positions += box / 2 - atoms.positions.mean(axis=0)
