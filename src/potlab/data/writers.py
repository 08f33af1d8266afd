"""Writing labelled frames as MACE-style extended XYZ, the format the rest of potlab reads."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from potlab.atomic import atomic_open
from potlab.data.keys import (
    CONFIG_TYPE_KEY,
    DEFAULT_CONFIG_TYPE,
    PROVENANCE_KEYS,
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    REF_STRESS_KEY,
)

log = logging.getLogger("potlab.data")


def write_extxyz(path: str | os.PathLike[str], frames: Sequence[Atoms]) -> Path:
    """Write frames to ``path`` as extended XYZ with ``REF_energy`` (eV), ``REF_forces``
    (eV/Å), ``REF_stress`` (Voigt, eV/Å^3) and ``config_type``, so that
    :func:`~potlab.data.read_frames` reads them back (to the 8 decimals of
    ASE's extxyz text format).

    Labels are taken from the canonical keys only; an attached calculator is ignored.
    Provenance keys (``source_file``, ``source_index``, ``source_group``) are not written:
    reading the file back records the new file as the source. Other ``info`` and
    ``arrays`` entries are kept. The file is written to a temporary file and renamed, so
    an existing file is never left half-written.

    Returns the path written.
    """
    path = Path(path)
    out = []
    for atoms in frames:
        copy = atoms.copy()  # Atoms.copy() drops the calculator
        for key in PROVENANCE_KEYS:
            copy.info.pop(key, None)
        copy.info.setdefault(CONFIG_TYPE_KEY, DEFAULT_CONFIG_TYPE)
        if REF_STRESS_KEY in copy.info:
            copy.info[REF_STRESS_KEY] = np.asarray(copy.info[REF_STRESS_KEY], dtype=float)
        if REF_ENERGY_KEY in copy.info:
            copy.info[REF_ENERGY_KEY] = float(copy.info[REF_ENERGY_KEY])
        if REF_FORCES_KEY in copy.arrays:
            copy.arrays[REF_FORCES_KEY] = np.asarray(copy.arrays[REF_FORCES_KEY], dtype=float)
        out.append(copy)

    import ase.io

    with atomic_open(path, "w") as handle:
        ase.io.write(handle, out, format="extxyz")
    log.info("wrote %d frames to %s", len(out), path)
    return path
