"""ASE SQLite database reader."""

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

    keys = (energy_key, forces_key, stress_key, config_type_key)
    frames = [row_frame(rows[i], i, path, keys) for i in _select(len(rows), index, path)]
    return _finish(frames, path, require_energy, require_forces)


def row_frame(row, i: int, path: Path, keys: tuple[str, str, str, str]) -> Atoms:
    """One database row as a labelled frame (not yet validated). ``i`` is the row's
    position (0-based, the frame index); ``keys`` are the energy, forces, stress and
    config_type keys. A damaged row is a DataError naming the frame."""
    energy_key, forces_key, stress_key, config_type_key = keys
    try:
        atoms = row.toatoms()
    except Exception as err:
        raise DataError(
            path, f"could not build a structure from row id {row.id}: {err}", frame=i
        ) from err
    try:
        results = {
            name: row.get(name)
            for name in ("energy", "free_energy", "forces", "stress")
            if row.get(name) is not None
        }
        # row.data wins over key-value pairs, which win over calculator results.
        kvp = dict(row.key_value_pairs)
        store = {**kvp, **dict(getattr(row, "data", None) or {})}
    except Exception as err:  # noqa: BLE001 - a damaged row: ASE raises many types
        raise DataError(path, f"damaged row id {row.id}: {type(err).__name__}: {err}",
                        frame=i) from None
    return _label(
        atoms,
        path=path,
        source_index=i,
        energy=_lookup(store, results, energy_key, REF_ENERGY_KEY, _CALC_ENERGY_NAMES),
        forces=_lookup(store, results, forces_key, REF_FORCES_KEY, _CALC_FORCES_NAMES),
        stress=_lookup(store, results, stress_key, REF_STRESS_KEY, _CALC_STRESS_NAMES),
        config_type=kvp.get(config_type_key),
    )
