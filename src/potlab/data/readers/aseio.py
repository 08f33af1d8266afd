"""Any other structure file ``ase.io.read`` reads (CIF, POSCAR, ASE ``.traj``, LAMMPS data,
...): the frames as ASE reads them, with labels from ``info``/``arrays`` under the given
keys or from the calculator results ASE attaches (energy, forces, stress)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ase import Atoms

from potlab.data.errors import DataError
from potlab.data.keys import CONFIG_TYPE_KEY, REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY
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


def read_ase_file(
    path: str | os.PathLike[str],
    *,
    energy_key: str = REF_ENERGY_KEY,
    forces_key: str = REF_FORCES_KEY,
    stress_key: str = REF_STRESS_KEY,
    config_type_key: str = CONFIG_TYPE_KEY,
    index: Index = ":",
    require_energy: bool = True,
    require_forces: bool = True,
    format: str | None = None,
) -> list[Atoms]:
    """Read every frame of ``path`` with ``ase.io.read`` (format guessed from the name and
    contents unless ``format`` is given). A file ASE cannot read is a DataError naming it.
    See :func:`potlab.data.read_frames` for the other parameters."""
    import ase.io

    path = Path(path)
    _check_exists(path)
    try:
        with warnings.catch_warnings():  # e.g. pymatgen-style CIF notes: not the user's concern
            warnings.simplefilter("ignore")
            raw = ase.io.read(path, index=":", format=format)
    except Exception as err:  # noqa: BLE001 - ASE raises many types for files it cannot read
        raise DataError(path, f"ase.io.read cannot read it: {type(err).__name__}: {err}") from None
    raw = raw if isinstance(raw, list) else [raw]
    frames = []
    for i in _select(len(raw), index, path):
        atoms = raw[i]
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        frames.append(_label(
            atoms, path=path, source_index=i,
            energy=_lookup(atoms.info, results, energy_key, REF_ENERGY_KEY, _CALC_ENERGY_NAMES),
            forces=_lookup(atoms.arrays, results, forces_key, REF_FORCES_KEY, _CALC_FORCES_NAMES),
            stress=_lookup(atoms.info, results, stress_key, REF_STRESS_KEY, _CALC_STRESS_NAMES),
            config_type=atoms.info.get(config_type_key),
        ))
    return _finish(frames, path, require_energy, require_forces)
