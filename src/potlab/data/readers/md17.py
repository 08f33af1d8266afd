"""rMD17/MD17 ``.npz`` reader: kcal/mol and kcal/mol/A converted to eV and eV/A."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from potlab.data.errors import DataError
from potlab.data.readers.common import (
    KCAL_PER_MOL,
    Index,
    _check_exists,
    _finish,
    _label,
    _select,
)

# ---------------------------------------------------------------------------------------
# rMD17 / MD17 npz

_NPZ_KEYS = {
    "numbers": ("nuclear_charges", "z"),
    "positions": ("coords", "R"),
    "energies": ("energies", "E"),
    "forces": ("forces", "F"),
}


def read_md17_npz(
    path: str | os.PathLike[str],
    *,
    index: Index = ":",
    require_energy: bool = True,
    require_forces: bool = True,
) -> list[Atoms]:
    """Read an rMD17/MD17 ``.npz`` file (non-periodic molecules).

    Arrays: ``nuclear_charges`` or ``z`` (n,), ``coords`` or ``R`` (m, n, 3) in Å,
    ``energies`` or ``E`` (m,) in kcal/mol, ``forces`` or ``F`` (m, n, 3) in kcal/mol/Å.
    Energies and forces are converted to eV and eV/Å with ``units.kcal / units.mol``.
    See :func:`read_frames` for the parameters.
    """
    path = Path(path)
    _check_exists(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as err:
        raise DataError(path, f"could not read as .npz: {err}") from err

    def find(role: str, required: bool) -> np.ndarray | None:
        for name in _NPZ_KEYS[role]:
            if name in arrays:
                return arrays[name]
        if required:
            raise DataError(
                path,
                f"missing array (tried {' or '.join(_NPZ_KEYS[role])})",
                field=_NPZ_KEYS[role][0],
            )
        return None

    def as_array(role: str, value, dtype) -> np.ndarray:
        try:
            return np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as err:
            raise DataError(path, f"not numbers: {err}", field=_NPZ_KEYS[role][0]) from None

    numbers = as_array("numbers", find("numbers", True), float).reshape(-1)
    if numbers.size and not np.all(numbers == np.round(numbers)):
        raise DataError(path, "atomic numbers must be integers", field="nuclear_charges")
    numbers = numbers.astype(int)
    positions = as_array("positions", find("positions", True), float)
    energies = find("energies", require_energy)
    forces = find("forces", require_forces)
    if positions.ndim == 2:
        positions = positions[None]
    if positions.ndim != 3 or positions.shape[1:] != (len(numbers), 3):
        raise DataError(
            path,
            f"shape {positions.shape} does not match (n_frames, {len(numbers)}, 3)",
            field="coords",
        )
    m = positions.shape[0]
    if energies is not None:
        energies = as_array("energies", energies, float).reshape(-1) * KCAL_PER_MOL
        if energies.shape != (m,):
            raise DataError(path, f"{energies.size} energies for {m} frames", field="energies")
    if forces is not None:
        forces = as_array("forces", forces, float) * KCAL_PER_MOL
        if forces.ndim == 0 or forces.shape[0] != m:  # per-frame shapes: checked by validation
            raise DataError(
                path, f"forces for {forces.shape[0] if forces.ndim else 0} frames, coordinates "
                f"for {m}", field="forces",
            )

    frames = []
    for i in _select(m, index, path):
        atoms = Atoms(numbers=numbers, positions=positions[i], pbc=False)
        frames.append(
            _label(
                atoms,
                path=path,
                source_index=i,
                energy=None if energies is None else energies[i],
                forces=None if forces is None else forces[i],
            )
        )
    return _finish(frames, path, require_energy, require_forces)
