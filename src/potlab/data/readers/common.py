"""What every reader shares: label lookup, frame selection, units, provenance, the final
validation."""

from __future__ import annotations

import logging
import re
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
    s = _as_float_array(stress, path, frame, field, None)
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
