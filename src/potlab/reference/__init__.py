"""potlab.reference: reference methods that label structures, and configuration generators.

- :class:`Labeller` / :func:`label`: structures -> :class:`LabelResult` (labelled
  frames under ``REF_energy``/``REF_forces``/``REF_stress`` and :class:`Failure` records),
  cached in a :class:`LabelStore` (ASE SQLite database), run through
  :mod:`potlab.executor` (local processes or Dask).
- :func:`get_method`: ``gfn2-xtb``, ``gfn1-xtb`` (tblite), ``chgnet``, ``sevennet``, or
  any ASE calculator as ``module:Class``.
- :mod:`potlab.reference.generate`: rattles, isolated atoms and molecules, volume scans,
  liquid boxes from SMILES, crystals from CIF, reference MD sampling.
"""

from __future__ import annotations

from potlab.reference.hashing import settings_hash, structure_hash
from potlab.reference.labeller import Failure, Labeller, LabelResult, label, label_one
from potlab.reference.methods import METHODS, Method, get_method
from potlab.reference.store import LabelStore, labelled_atoms

__all__ = [
    "METHODS",
    "Failure",
    "LabelResult",
    "LabelStore",
    "Labeller",
    "Method",
    "get_method",
    "label",
    "label_one",
    "labelled_atoms",
    "settings_hash",
    "structure_hash",
]
