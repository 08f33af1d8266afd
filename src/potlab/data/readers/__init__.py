"""Readers: files of labelled structures -> lists of ``ase.Atoms`` in eV and Å.

One reader per format, each public, and :func:`read_frames` choosing by suffix:

============================  ============================================================
suffix                        reader
============================  ============================================================
``.xyz``, ``.extxyz``         :func:`read_extxyz` (extended XYZ, e.g. MACE-style files)
``.db``                       :func:`read_ase_db` (ASE SQLite database)
``.npz``                      :func:`read_md17_npz` (rMD17/MD17; kcal/mol, kcal/mol/Å)
``.h5``, ``.hdf5``            :func:`read_spice_hdf5` (SPICE-style; hartree, bohr)
anything else                 :func:`read_ase_file` (whatever ``ase.io.read`` reads: CIF,
                              POSCAR, ``.traj``, ...)
============================  ============================================================

:func:`read_structures` reads structures to label or start from (labels optional).

Every returned frame carries its labels under the canonical keys of
:mod:`potlab.data.keys`, its provenance (``source_file``, ``source_index``), no
calculator, and has passed :func:`~potlab.data.validate.validate_frames`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ase import Atoms

from potlab.data.errors import DataError
from potlab.data.keys import CONFIG_TYPE_KEY, REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY
from potlab.data.readers.asedb import read_ase_db
from potlab.data.readers.aseio import read_ase_file
from potlab.data.readers.common import KCAL_PER_MOL, Index
from potlab.data.readers.extxyz import read_extxyz
from potlab.data.readers.md17 import read_md17_npz
from potlab.data.readers.spice import read_spice_hdf5

# ---------------------------------------------------------------------------------------
# dispatcher


def read_frames(
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
    """Read labelled frames from ``path``, choosing the reader by suffix.

    Parameters
    ----------
    path: a ``.xyz``/``.extxyz``, ``.db``, ``.npz`` or ``.h5``/``.hdf5`` file, or any other
        file ``ase.io.read`` reads.
    energy_key, forces_key, stress_key, config_type_key: where the labels are in the file
        (extxyz and ASE db only; the npz and HDF5 layouts are fixed).
    index: which frames, as in ``ase.io.read``: ``":"``, ``"2:10:2"``, ``-1``, a slice,
        or a list of ints. ``source_index`` is always the index in the whole file.
    require_energy, require_forces: whether a frame without that label is an error.

    Returns
    -------
    Frames in eV and Å with labels under the canonical keys; see :mod:`potlab.data.keys`.

    Raises
    ------
    FileNotFoundError: no such file.
    DataError: a file no reader can parse, or a frame that fails validation.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    label_keys = {
        "energy_key": energy_key,
        "forces_key": forces_key,
        "stress_key": stress_key,
        "config_type_key": config_type_key,
    }
    common = {"index": index, "require_energy": require_energy, "require_forces": require_forces}
    if suffix in (".xyz", ".extxyz"):
        return read_extxyz(path, **label_keys, **common)
    if suffix == ".db":
        return read_ase_db(path, **label_keys, **common)
    if suffix == ".npz":
        return read_md17_npz(path, **common)
    if suffix in (".h5", ".hdf5"):
        return read_spice_hdf5(path, **common)
    return read_ase_file(path, **label_keys, **common)


def read_structures(path: str | os.PathLike[str], *, index: Index = ":") -> list[Atoms]:
    """Structures to label, rattle or start MD from: every frame of any file
    :func:`read_frames` reads (so whatever ``ase.io.read`` reads), labels kept when present
    and not required. DataError naming the file when it holds no structure."""
    frames = read_frames(path, index=index, require_energy=False, require_forces=False)
    if not frames:
        raise DataError(path, "no structures in the file")
    return frames


ReaderFn = Callable[..., list[Atoms]]
#: suffix -> reader, for callers that want to list what is supported.
READERS: dict[str, ReaderFn] = {
    ".xyz": read_extxyz,
    ".extxyz": read_extxyz,
    ".db": read_ase_db,
    ".npz": read_md17_npz,
    ".h5": read_spice_hdf5,
    ".hdf5": read_spice_hdf5,
}

__all__ = [
    "KCAL_PER_MOL",
    "READERS",
    "read_ase_db",
    "read_ase_file",
    "read_extxyz",
    "read_frames",
    "read_md17_npz",
    "read_spice_hdf5",
    "read_structures",
]
