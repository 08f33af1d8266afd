"""Validation of labelled frames: every problem becomes a DataError naming file, frame, field.

The readers call :func:`validate_frames` on what they return, so bad input fails at read
time, not hours into training.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from potlab.data.errors import DataError
from potlab.data.keys import (
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    REF_STRESS_KEY,
    SOURCE_GROUP_KEY,
    SOURCE_INDEX_KEY,
)

_MAX_Z = len(chemical_symbols) - 1
# A periodic direction whose cell vectors span less than this (Å, smallest singular value)
# is treated as degenerate.
_MIN_CELL_SINGULAR_VALUE = 1e-6


def validate_frames(
    frames: Sequence[Atoms],
    *,
    file: str | os.PathLike[str],
    require_energy: bool = True,
    require_forces: bool = True,
    allowed_elements: Collection[int] | None = None,
) -> None:
    """Check labelled frames and raise :class:`DataError` on the first problem.

    Labels are looked up under the canonical keys (:mod:`potlab.data.keys`). The frame
    index in an error is ``atoms.info["source_index"]`` when present (the index in the
    file), else the position in ``frames``.

    Checks, with the field named in the error:

    - zero atoms (``numbers``); unknown element, i.e. atomic number 0 (symbol ``X``),
      out of range, or not in ``allowed_elements`` (``numbers``)
    - NaN/inf in positions (``positions``)
    - any ``pbc`` True with a zero, degenerate or non-finite cell (``cell``)
    - energy missing (if required), not a scalar, NaN/inf (``REF_energy``)
    - forces missing (if required), shape not (n_atoms, 3), NaN/inf (``REF_forces``)
    - stress shape not (6,), NaN/inf (``REF_stress``)

    Parameters
    ----------
    frames: the frames to check.
    file: the file they came from, for the error message.
    require_energy, require_forces: whether a missing label is an error.
    allowed_elements: atomic numbers allowed; None allows every real element.
    """
    allowed = None if allowed_elements is None else {int(z) for z in allowed_elements}
    for position, atoms in enumerate(frames):
        frame = int(atoms.info.get(SOURCE_INDEX_KEY, position))
        group = atoms.info.get(SOURCE_GROUP_KEY)

        def fail(field: str, reason: str, frame: int = frame, group: str | None = group):
            raise DataError(file, reason, frame=frame, field=field, group=group)

        _check_structure(atoms, allowed, fail)
        _check_labels(atoms, require_energy, require_forces, fail)


def _check_structure(atoms: Atoms, allowed: set[int] | None, fail) -> None:
    n = len(atoms)
    if n == 0:
        fail("numbers", "frame has zero atoms")
    numbers = atoms.numbers
    unknown = np.flatnonzero((numbers <= 0) | (numbers > _MAX_Z))
    if unknown.size:
        i = int(unknown[0])
        fail("numbers", f"unknown element (symbol 'X', atomic number {numbers[i]}) at atom {i}")
    if allowed is not None:
        outside = np.flatnonzero(~np.isin(numbers, list(allowed)))
        if outside.size:
            i, z = int(outside[0]), int(numbers[outside[0]])
            allowed_symbols = ", ".join(chemical_symbols[a] for a in sorted(allowed))
            fail(
                "numbers",
                f"element {chemical_symbols[z]} (Z={z}) at atom {i} is not among the "
                f"allowed elements [{allowed_symbols}]",
            )
    positions = atoms.positions
    if not np.all(np.isfinite(positions)):
        bad = int(np.argwhere(~np.isfinite(positions))[0, 0])
        fail("positions", f"contains NaN or inf (atom {bad})")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any():
        cell = np.asarray(atoms.cell.array, dtype=float)
        if not np.all(np.isfinite(cell)):
            fail("cell", "periodic frame has a cell containing NaN or inf")
        periodic_vectors = cell[pbc]  # [n_periodic, 3]
        smallest = np.linalg.svd(periodic_vectors, compute_uv=False).min()
        if smallest < _MIN_CELL_SINGULAR_VALUE:
            fail(
                "cell",
                f"pbc={pbc.tolist()} but the cell is zero or degenerate "
                f"(periodic cell vectors {periodic_vectors.tolist()} Å)",
            )


def _check_labels(atoms: Atoms, require_energy: bool, require_forces: bool, fail) -> None:
    n = len(atoms)
    if REF_ENERGY_KEY in atoms.info:
        energy = np.asarray(atoms.info[REF_ENERGY_KEY])
        if energy.size != 1:
            fail(REF_ENERGY_KEY, f"expected a scalar energy, got shape {energy.shape}")
        if not np.issubdtype(energy.dtype, np.number):
            fail(REF_ENERGY_KEY, f"expected a number, got {atoms.info[REF_ENERGY_KEY]!r}")
        if not np.isfinite(energy).all():
            fail(REF_ENERGY_KEY, f"contains NaN or inf (value {energy.item()})")
    elif require_energy:
        fail(REF_ENERGY_KEY, "missing energy")

    if REF_FORCES_KEY in atoms.arrays:
        forces = np.asarray(atoms.arrays[REF_FORCES_KEY])
        if forces.shape != (n, 3):
            fail(
                REF_FORCES_KEY,
                f"shape {forces.shape} does not match (n_atoms, 3) = ({n}, 3)",
            )
        if not np.issubdtype(forces.dtype, np.number):
            fail(REF_FORCES_KEY, f"expected numbers, got dtype {forces.dtype}")
        if np.isnan(forces).any():
            bad = int(np.argwhere(np.isnan(forces))[0, 0])
            fail(REF_FORCES_KEY, f"contains NaN (atom {bad})")
        if not np.isfinite(forces).all():
            bad = int(np.argwhere(~np.isfinite(forces))[0, 0])
            fail(REF_FORCES_KEY, f"contains inf (atom {bad})")
    elif require_forces:
        fail(REF_FORCES_KEY, "missing forces")

    if REF_STRESS_KEY in atoms.info:
        stress = np.asarray(atoms.info[REF_STRESS_KEY])
        if stress.shape != (6,):
            fail(REF_STRESS_KEY, f"expected Voigt shape (6,), got {stress.shape}")
        if not np.issubdtype(stress.dtype, np.number) or not np.isfinite(stress).all():
            fail(REF_STRESS_KEY, "contains NaN or inf or non-numbers")
