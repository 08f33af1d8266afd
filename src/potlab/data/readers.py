"""Readers: files of labelled structures -> lists of ``ase.Atoms`` in eV and Å.

One reader per format, each public, and :func:`read_frames` choosing by suffix:

============================  ============================================================
suffix                        reader
============================  ============================================================
``.xyz``, ``.extxyz``         :func:`read_extxyz` (extended XYZ, e.g. MACE-style files)
``.db``                       :func:`read_ase_db` (ASE SQLite database)
``.npz``                      :func:`read_md17_npz` (rMD17/MD17; kcal/mol, kcal/mol/Å)
``.h5``, ``.hdf5``            :func:`read_spice_hdf5` (SPICE-style; hartree, bohr)
============================  ============================================================

Every returned frame carries its labels under the canonical keys of
:mod:`potlab.data.keys`, its provenance (``source_file``, ``source_index``), no
calculator, and has passed :func:`~potlab.data.validate.validate_frames`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.stress import full_3x3_to_voigt_6_stress

from potlab.data.errors import DataError
from potlab.data.keys import (
    CONFIG_TYPE_KEY,
    DEFAULT_CONFIG_TYPE,
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    REF_STRESS_KEY,
    SOURCE_FILE_KEY,
    SOURCE_GROUP_KEY,
    SOURCE_INDEX_KEY,
)
from potlab.data.validate import validate_frames

log = logging.getLogger("potlab.data")

#: kcal/mol in eV (MD17/rMD17 energies); forces in kcal/mol/Å use the same factor per Å.
KCAL_PER_MOL = units.kcal / units.mol

Index = int | slice | str | list[int] | np.ndarray

# Calculator property names that ASE's extxyz reader moves into a SinglePointCalculator.
_CALC_ENERGY_NAMES = ("energy", "free_energy")
_CALC_FORCES_NAMES = ("forces",)
_CALC_STRESS_NAMES = ("stress",)


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
    path: a ``.xyz``/``.extxyz``, ``.db``, ``.npz`` or ``.h5``/``.hdf5`` file.
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
    DataError: unknown suffix, unparsable file, or a frame that fails validation.
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
    raise DataError(
        path,
        f"unknown file type {suffix!r}; supported: .xyz .extxyz .db .npz .h5 .hdf5",
    )


# ---------------------------------------------------------------------------------------
# shared pieces


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")


def _select(n: int, index: Index, path: Path) -> list[int]:
    """0-based indices into n frames chosen by an ase.io.read-style ``index``."""
    all_indices = list(range(n))
    try:
        if isinstance(index, str):
            if re.fullmatch(r"\s*-?\d+\s*", index):
                index = int(index)
            else:
                parts = [int(p) if p.strip() else None for p in index.split(":")]
                if not 1 < len(parts) <= 3:
                    raise ValueError(index)
                index = slice(*parts)
        if isinstance(index, slice):
            return all_indices[index]
        if isinstance(index, int | np.integer):
            return [all_indices[int(index)]]
        return [all_indices[int(i)] for i in index]
    except (ValueError, IndexError, TypeError) as err:
        raise DataError(path, f"bad frame index {index!r} for a file of {n} frames") from err


def _as_voigt(stress: Any, path: Path, frame: int, field: str) -> np.ndarray:
    """Stress given as 6 (Voigt xx yy zz yz xz xy), 9 or 3x3 components -> shape (6,)."""
    s = np.asarray(stress, dtype=float)
    if s.size == 6:
        return s.reshape(6).copy()
    if s.size == 9:
        return full_3x3_to_voigt_6_stress(s.reshape(3, 3))
    raise DataError(
        path, f"stress must have 6 or 9 components, got {s.size}", frame=frame, field=field
    )


def _label(
    atoms: Atoms,
    *,
    path: Path,
    source_index: int,
    energy: Any = None,
    forces: Any = None,
    stress: Any = None,
    config_type: Any = None,
    group: str | None = None,
) -> Atoms:
    """Put labels under the canonical keys, drop the calculator, record provenance."""
    atoms.calc = None
    for key in (REF_ENERGY_KEY, REF_STRESS_KEY):
        atoms.info.pop(key, None)
    atoms.arrays.pop(REF_FORCES_KEY, None)
    if energy is not None:
        e = _as_float_array(energy, path, source_index, REF_ENERGY_KEY, group)
        atoms.info[REF_ENERGY_KEY] = float(e.reshape(-1)[0]) if e.size == 1 else e
    if forces is not None:
        # Assigned directly (not set_array) so that a wrong shape reaches validation,
        # which reports it with file, frame and field.
        atoms.arrays[REF_FORCES_KEY] = _as_float_array(
            forces, path, source_index, REF_FORCES_KEY, group
        )
    if stress is not None:
        atoms.info[REF_STRESS_KEY] = _as_voigt(stress, path, source_index, REF_STRESS_KEY)
    atoms.info[CONFIG_TYPE_KEY] = (
        DEFAULT_CONFIG_TYPE if config_type is None else _to_str(config_type)
    )
    atoms.info[SOURCE_FILE_KEY] = str(path)
    atoms.info[SOURCE_INDEX_KEY] = int(source_index)
    if group is not None:
        atoms.info[SOURCE_GROUP_KEY] = group
    return atoms


def _as_float_array(value: Any, path: Path, frame: int, field: str, group: str | None):
    try:
        return np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise DataError(
            path, f"not a number: {value!r}", frame=frame, field=field, group=group
        ) from err


def _to_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _to_str(value.reshape(-1)[0])
    return str(value)


def _finish(
    frames: list[Atoms], path: Path, require_energy: bool, require_forces: bool
) -> list[Atoms]:
    validate_frames(frames, file=path, require_energy=require_energy, require_forces=require_forces)
    log.info("read %d frames from %s", len(frames), path)
    return frames


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


def _lookup(
    store: dict[str, Any],
    results: dict[str, Any],
    key: str,
    default_key: str,
    calc_names: tuple[str, ...],
) -> Any:
    """A label from info/arrays[key], else calc results[key], else (default key only)
    the calculator's generic property."""
    if key in store:
        return store[key]
    if key in results:
        return results[key]
    if key == default_key:
        for name in calc_names:
            if name in results:
                return results[name]
    return None


# ---------------------------------------------------------------------------------------
# ASE database


def read_ase_db(
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
    """Read an ASE SQLite database (``ase.db.connect``), rows in id order.

    A label is taken from ``row.data[key]``, else the key-value pairs, else the row's
    calculator results (``energy``, ``free_energy``, ``forces``, ``stress``, also used
    when the key is the default ``REF_*`` name and not found elsewhere). ``config_type``
    comes from the key-value pairs. The frame index is the row's position (0-based), not
    its database id. See :func:`read_frames` for the parameters.
    """
    import ase.db

    path = Path(path)
    _check_exists(path)
    try:
        with ase.db.connect(str(path), type="db") as db:
            rows = list(db.select(sort="id"))
    except Exception as err:
        raise DataError(path, f"could not open as an ASE database: {err}") from err

    frames = []
    for i in _select(len(rows), index, path):
        row = rows[i]
        try:
            atoms = row.toatoms()
        except Exception as err:
            raise DataError(
                path, f"could not build a structure from row id {row.id}: {err}", frame=i
            ) from err
        results = {
            name: row.get(name)
            for name in ("energy", "free_energy", "forces", "stress")
            if row.get(name) is not None
        }
        # row.data wins over key-value pairs, which win over calculator results.
        kvp = dict(row.key_value_pairs)
        store = {**kvp, **dict(getattr(row, "data", None) or {})}

        frames.append(
            _label(
                atoms,
                path=path,
                source_index=i,
                energy=_lookup(store, results, energy_key, REF_ENERGY_KEY, _CALC_ENERGY_NAMES),
                forces=_lookup(store, results, forces_key, REF_FORCES_KEY, _CALC_FORCES_NAMES),
                stress=_lookup(store, results, stress_key, REF_STRESS_KEY, _CALC_STRESS_NAMES),
                config_type=kvp.get(config_type_key),
            )
        )
    return _finish(frames, path, require_energy, require_forces)


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

    numbers = np.asarray(find("numbers", True)).reshape(-1).astype(int)
    positions = np.asarray(find("positions", True), dtype=float)
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
        energies = np.asarray(energies, dtype=float).reshape(-1) * KCAL_PER_MOL
        if energies.shape != (m,):
            raise DataError(path, f"{energies.size} energies for {m} frames", field="energies")
    if forces is not None:
        forces = np.asarray(forces, dtype=float) * KCAL_PER_MOL
        if forces.shape[:1] != (m,):
            raise DataError(
                path, f"forces for {forces.shape[0]} frames, coordinates for {m}", field="forces"
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


# ---------------------------------------------------------------------------------------
# SPICE-style HDF5


def read_spice_hdf5(
    path: str | os.PathLike[str],
    *,
    index: Index = ":",
    require_energy: bool = True,
    require_forces: bool = True,
    subset_key: str = "subset",
) -> list[Atoms]:
    """Read a SPICE-style HDF5 file: one group per molecule, non-periodic.

    Each group holds ``atomic_numbers`` (n,), ``conformations`` (m, n, 3) in bohr,
    ``dft_total_energy`` (m,) in hartree and ``dft_total_gradient`` (m, n, 3) in
    hartree/bohr; forces are minus the gradient. Converted with ``units.Bohr`` and
    ``units.Hartree``. ``config_type`` is the group's ``subset_key`` dataset when present,
    else the group name; the group name is also kept in ``info["source_group"]``.
    The frame index counts conformations across groups in file (h5py iteration) order.
    See :func:`read_frames` for the other parameters.
    """
    import h5py

    path = Path(path)
    _check_exists(path)
    frames: list[Atoms] = []
    try:
        handle = h5py.File(path, "r")
    except Exception as err:
        raise DataError(path, f"could not open as HDF5: {err}") from err
    with handle:
        # Count conformations first, so the index selects without reading every array.
        groups = [name for name in handle if isinstance(handle[name], h5py.Group)]
        starts: list[int] = []
        total = 0
        for name in groups:
            if "conformations" not in handle[name]:
                raise DataError(
                    path, "missing dataset", frame=total, field="conformations", group=name
                )
            starts.append(total)
            total += int(handle[name]["conformations"].shape[0])
        wanted = _select(total, index, path)
        by_group: dict[int, list[int]] = {}
        for frame in wanted:
            g = int(np.searchsorted(starts, frame, side="right")) - 1
            by_group.setdefault(g, []).append(frame)
        selected: dict[int, Atoms] = {}
        for g, frame_ids in by_group.items():
            name = groups[g]
            for frame, atoms in zip(
                frame_ids,
                _read_spice_group(
                    handle[name],
                    name,
                    starts[g],
                    frame_ids,
                    path,
                    require_energy,
                    require_forces,
                    subset_key,
                ),
                strict=True,
            ):
                selected[frame] = atoms
        frames = [selected[frame] for frame in wanted]
    return _finish(frames, path, require_energy, require_forces)


def _read_spice_group(
    group: Any,
    name: str,
    start: int,
    frame_ids: list[int],
    path: Path,
    require_energy: bool,
    require_forces: bool,
    subset_key: str,
) -> list[Atoms]:
    def dataset(key: str, required: bool) -> np.ndarray | None:
        if key in group:
            return np.asarray(group[key][()])
        if required:
            raise DataError(path, "missing dataset", frame=start, field=key, group=name)
        return None

    numbers = dataset("atomic_numbers", True).reshape(-1).astype(int)
    positions = dataset("conformations", True).astype(float) * units.Bohr
    energies = dataset("dft_total_energy", require_energy)
    gradients = dataset("dft_total_gradient", require_forces)
    m = positions.shape[0]
    if positions.shape[1:] != (len(numbers), 3):
        raise DataError(
            path,
            f"shape {positions.shape} does not match (n_conformations, {len(numbers)}, 3)",
            frame=start,
            field="conformations",
            group=name,
        )
    if energies is not None:
        energies = energies.astype(float).reshape(-1) * units.Hartree
        if energies.shape != (m,):
            raise DataError(
                path,
                f"{energies.size} energies for {m} conformations",
                frame=start,
                field="dft_total_energy",
                group=name,
            )
    forces = None
    if gradients is not None:
        forces = -gradients.astype(float) * (units.Hartree / units.Bohr)
        if forces.shape[:1] != (m,):
            raise DataError(
                path,
                f"gradients for {forces.shape[0]} conformations, coordinates for {m}",
                frame=start,
                field="dft_total_gradient",
                group=name,
            )
    subset = dataset(subset_key, False)
    config_type = name if subset is None else _to_str(subset)

    frames = []
    for frame in frame_ids:
        j = frame - start
        atoms = Atoms(numbers=numbers, positions=positions[j], pbc=False)
        frames.append(
            _label(
                atoms,
                path=path,
                source_index=frame,
                energy=None if energies is None else energies[j],
                forces=None if forces is None else forces[j],
                config_type=config_type,
                group=name,
            )
        )
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
