"""Canonical names under which every frame read by :mod:`potlab.data` carries its labels.

After reading, labels live in exactly one place (no calculator is attached):

- ``atoms.info[REF_ENERGY_KEY]``: total energy, float, eV
- ``atoms.arrays[REF_FORCES_KEY]``: forces, shape (n_atoms, 3), eV/Å
- ``atoms.info[REF_STRESS_KEY]``: stress, shape (6,), Voigt order xx yy zz yz xz xy,
  eV/Å^3, ASE sign convention
- ``atoms.info[CONFIG_TYPE_KEY]``: subset name, str (default :data:`DEFAULT_CONFIG_TYPE`)
- ``atoms.info[SOURCE_FILE_KEY]`` / ``atoms.info[SOURCE_INDEX_KEY]``: provenance, the file
  a frame was read from and its 0-based frame index in that file
- ``atoms.info[SOURCE_GROUP_KEY]``: for HDF5 files, the group (molecule) the frame came from
"""

from __future__ import annotations

REF_ENERGY_KEY = "REF_energy"
REF_FORCES_KEY = "REF_forces"
REF_STRESS_KEY = "REF_stress"
CONFIG_TYPE_KEY = "config_type"
DEFAULT_CONFIG_TYPE = "Default"
SOURCE_FILE_KEY = "source_file"
SOURCE_INDEX_KEY = "source_index"
SOURCE_GROUP_KEY = "source_group"

PROVENANCE_KEYS = (SOURCE_FILE_KEY, SOURCE_INDEX_KEY, SOURCE_GROUP_KEY)

__all__ = [
    "CONFIG_TYPE_KEY",
    "DEFAULT_CONFIG_TYPE",
    "PROVENANCE_KEYS",
    "REF_ENERGY_KEY",
    "REF_FORCES_KEY",
    "REF_STRESS_KEY",
    "SOURCE_FILE_KEY",
    "SOURCE_GROUP_KEY",
    "SOURCE_INDEX_KEY",
]
