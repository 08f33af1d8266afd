"""The label store: an ASE SQLite database of every label and failure, keyed by hash.

One row per (structure hash, method key). A row holds the structure, and for a success
its energy (eV), forces (eV/A) and, for periodic cells, stress (eV/A^3, Voigt) through
ASE's single-point results; key-value pairs ``structure_hash``, ``method``,
``method_key``, ``version``, ``ok``, ``reason``, ``error_type``, ``wall_time`` (s),
``charge``, ``spin``; and the method settings (JSON) in ``data``. Each write is one SQLite
transaction, so a killed run leaves only whole rows; a second write of the same key is
ignored (nothing is labelled twice). Open it with ``ase db labels.db`` to browse.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from potlab.data.keys import REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY


class LabelStore:
    """Labels and failures in an ASE database at ``path`` (SQLite, created on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import ase.db

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = ase.db.connect(str(self.path), type="db", append=True)

    def __len__(self) -> int:
        return self._db.count()

    def lookup(self, method_key: str) -> dict[str, dict[str, Any]]:
        """Every stored record of ``method_key``, as ``{structure_hash: record}``."""
        return {row.structure_hash: _record(row)
                for row in self._db.select(method_key=method_key)}

    def get(self, structure_hash: str, method_key: str) -> dict[str, Any] | None:
        """The stored record of one structure under one method, or None."""
        rows = list(self._db.select(structure_hash=structure_hash, method_key=method_key))
        return _record(rows[0]) if rows else None

    def put(self, atoms: Atoms, record: dict[str, Any], *, replace: bool = False) -> bool:
        """Write one labelling ``record`` (from :func:`potlab.reference.labeller.label_one`)
        for ``atoms``. Returns False (and writes nothing) when the key is already stored,
        unless ``replace`` (used to retry a stored failure)."""
        h, key = record["structure_hash"], record["method_key"]
        existing = [row.id for row in self._db.select(structure_hash=h, method_key=key)]
        if existing and not replace:
            return False
        copy = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        if record["ok"]:
            copy.calc = SinglePointCalculator(copy, energy=record["energy"],
                                              forces=record["forces"],
                                              **({"stress": record["stress"]}
                                                 if record.get("stress") is not None else {}))
        kvp = {k: record[k] for k in ("structure_hash", "method", "method_key", "version", "ok",
                                      "reason", "error_type", "wall_time", "charge", "spin")}
        with self._db:  # one transaction: delete the failure and write its replacement
            if existing:
                self._db.delete(existing)
            self._db.write(copy, key_value_pairs=kvp,
                           data={"settings": json.dumps(record["settings"], sort_keys=True)})
        return True

    def records(self, method_key: str | None = None) -> Iterator[tuple[Atoms, dict[str, Any]]]:
        """(structure, record) for every row, optionally of one method."""
        query = {} if method_key is None else {"method_key": method_key}
        for row in self._db.select(**query):
            yield row.toatoms(), _record(row)

    def frames(self, method_key: str | None = None) -> list[Atoms]:
        """The successful labels as frames with ``REF_energy``/``REF_forces``/``REF_stress``."""
        return [labelled_atoms(atoms, rec) for atoms, rec in self.records(method_key) if rec["ok"]]

    def export_extxyz(self, path: str | os.PathLike[str], method_key: str | None = None) -> Path:
        """Write the successful labels to MACE-style extended XYZ; returns the path."""
        from potlab.data.writers import write_extxyz

        return write_extxyz(path, self.frames(method_key))


def _record(row) -> dict[str, Any]:
    rec = {k: row.get(k) for k in ("structure_hash", "method", "method_key", "version", "ok",
                                   "reason", "error_type", "wall_time", "charge", "spin")}
    rec["ok"] = bool(rec["ok"])
    rec["settings"] = json.loads(row.data.get("settings", "{}")) if row.data else {}
    if rec["ok"]:
        rec["energy"] = float(row.energy)
        rec["forces"] = np.array(row.forces)
        rec["stress"] = np.array(row.stress) if row.get("stress") is not None else None
    return rec


def labelled_atoms(atoms: Atoms, record: dict[str, Any]) -> Atoms:
    """A copy of ``atoms`` carrying the record's labels under the canonical REF keys plus
    ``ref_method`` and ``ref_version`` in ``info``."""
    out = atoms.copy()
    out.info[REF_ENERGY_KEY] = float(record["energy"])
    out.arrays[REF_FORCES_KEY] = np.asarray(record["forces"], dtype=float).reshape(-1, 3)
    if record.get("stress") is not None:
        out.info[REF_STRESS_KEY] = np.asarray(record["stress"], dtype=float)
    out.info["ref_method"] = record["method"]
    out.info["ref_version"] = record["version"]
    return out
