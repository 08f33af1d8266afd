"""Extended XYZ reader (MACE-style keys or the ASE calculator fields)."""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from potlab.data.errors import DataError
from potlab.data.keys import (
    CONFIG_TYPE_KEY,
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    REF_STRESS_KEY,
)
from potlab.data.readers.common import (
    _CALC_ENERGY_NAMES,
    _CALC_FORCES_NAMES,
    _CALC_STRESS_NAMES,
    Index,
    _check_exists,
    _finish,
    _label,
    _lookup,
    _select,
)

# ---------------------------------------------------------------------------------------
# extended XYZ


def read_extxyz(
    path: str | os.PathLike[str],
    *,
    energy_key: str = REF_ENERGY_KEY,
    forces_key: str = REF_FORCES_KEY,
    stress_key: str = REF_STRESS_KEY,
    config_type_key: str = CONFIG_TYPE_KEY,
    index: Index = ":",
    require_energy: bool = True,
    require_forces: bool = True,
) -> list[Atoms]:
    """Read an extended XYZ file; energies in eV, forces in eV/Å, stress in eV/Å^3.

    Each label is looked up, in order, in ``atoms.info`` / ``atoms.arrays`` under the
    given key, then in the calculator results ASE's reader makes from ``energy=``,
    ``forces``, ``stress=`` (so ``energy_key="energy"`` or ``"free_energy"`` work). When
    the key is the default ``REF_*`` name and is found nowhere, the calculator's
    ``energy``/``forces``/``stress`` are used, so plain ASE-written files read as they are.
    Stress may have 6 (Voigt) or 9 components. The source keys are removed once copied.
    See :func:`read_frames` for the parameters.
    """
    import ase.io

    path = Path(path)
    _check_exists(path)
    raw: list[Atoms] = []
    try:
        for atoms in ase.io.iread(path, index=":", format="extxyz"):
            raw.append(atoms)  # noqa: PERF402 (len(raw) locates a parse error)
    except Exception as err:  # ASE raises many types for malformed input
        raise DataError(
            path, f"could not parse extended XYZ: {type(err).__name__}: {err}", frame=len(raw)
        ) from err

    frames = []
    for i in _select(len(raw), index, path):
        atoms = raw[i]
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        energy = _lookup(atoms.info, results, energy_key, REF_ENERGY_KEY, _CALC_ENERGY_NAMES)
        forces = _lookup(atoms.arrays, results, forces_key, REF_FORCES_KEY, _CALC_FORCES_NAMES)
        stress = _lookup(atoms.info, results, stress_key, REF_STRESS_KEY, _CALC_STRESS_NAMES)
        config_type = atoms.info.get(config_type_key)
        for key in (energy_key, stress_key):
            atoms.info.pop(key, None)
        if forces_key not in ("numbers", "positions"):
            atoms.arrays.pop(forces_key, None)
        frames.append(
            _label(
                atoms,
                path=path,
                source_index=i,
                energy=energy,
                forces=forces,
                stress=stress,
                config_type=config_type,
            )
        )
    return _finish(frames, path, require_energy, require_forces)
