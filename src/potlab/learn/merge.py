"""The merge step: the next iteration's data is this iteration's data with the new labels
appended after it (old frames first, so an inherited split still finds them where they
were), and the structure hashes that keep a frame already in the data, or in the test set,
from being selected."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ase import Atoms

from potlab.data import read_frames
from potlab.data.writers import write_extxyz
from potlab.reference.hashing import structure_hash


def merge_data(data_path: str | Path, new: Sequence[Atoms], out_path: str | Path) -> int:
    """Write ``data_path``'s frames followed by ``new`` to ``out_path`` (atomically);
    returns the number of frames written."""
    old = read_frames(data_path)
    frames = list(old) + list(new)
    write_extxyz(out_path, frames)
    return len(frames)


def data_hashes(frames: Sequence[Atoms], charge_spin=None) -> frozenset[str]:
    """Structure hashes of ``frames`` (``charge_spin(atoms) -> (charge, spin)``, the
    labelling method's, so that hashes match the label store's)."""
    out = set()
    for a in frames:
        c, s = charge_spin(a) if charge_spin is not None else (0.0, 0.0)
        out.add(structure_hash(a, c, s))
    return frozenset(out)


def unselectable_hashes(paths: Sequence[str | Path], charge_spin=None) -> frozenset[str]:
    """Structure hashes of the frames in every file of ``paths`` that exists: the
    iteration's data and the test set, which stays unseen."""
    out: frozenset[str] = frozenset()
    for p in paths:
        if Path(p).exists():
            out |= data_hashes(read_frames(p), charge_spin)
    return out
