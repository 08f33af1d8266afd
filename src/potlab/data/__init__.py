"""potlab.data: labelled frames in, checked and in eV/Å; E0, outliers, splits, subsets.

Frames are ``ase.Atoms`` with labels under the keys of :mod:`potlab.data.keys`
(``REF_energy``, ``REF_forces``, ``REF_stress``, ``config_type``) and their provenance
(``source_file``, ``source_index``). Every reader validates what it returns, so bad input
fails at read time with a :class:`DataError` naming file, frame and field.
"""

from __future__ import annotations

from potlab.data.dataset import Dataset
from potlab.data.e0 import (
    E0Fit,
    apply_e0,
    composition_counts,
    e0_from_dict,
    fit_e0,
    fit_e0_streaming,
)
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
from potlab.data.lazy import LazyFrames, elements_of, is_lazy, open_frames, take
from potlab.data.loader import iter_batches
from potlab.data.outliers import OutlierReport, drop_outliers, screen_outliers
from potlab.data.readers import (
    read_ase_db,
    read_ase_file,
    read_extxyz,
    read_frames,
    read_md17_npz,
    read_spice_hdf5,
    read_structures,
)
from potlab.data.split import (
    Split,
    check_split,
    fingerprint,
    random_split,
    split_from_file,
    subset_split,
)
from potlab.data.subsets import frame_weights, sampling_probabilities, subsets
from potlab.data.validate import validate_frames
from potlab.data.writers import write_extxyz

__all__ = [
    "CONFIG_TYPE_KEY",
    "DEFAULT_CONFIG_TYPE",
    "REF_ENERGY_KEY",
    "REF_FORCES_KEY",
    "REF_STRESS_KEY",
    "SOURCE_FILE_KEY",
    "SOURCE_GROUP_KEY",
    "SOURCE_INDEX_KEY",
    "DataError",
    "Dataset",
    "E0Fit",
    "LazyFrames",
    "OutlierReport",
    "Split",
    "apply_e0",
    "check_split",
    "composition_counts",
    "drop_outliers",
    "e0_from_dict",
    "elements_of",
    "fingerprint",
    "fit_e0",
    "fit_e0_streaming",
    "frame_weights",
    "is_lazy",
    "iter_batches",
    "open_frames",
    "random_split",
    "read_ase_db",
    "read_ase_file",
    "read_extxyz",
    "read_frames",
    "read_md17_npz",
    "read_spice_hdf5",
    "read_structures",
    "sampling_probabilities",
    "screen_outliers",
    "split_from_file",
    "subset_split",
    "subsets",
    "take",
    "validate_frames",
    "write_extxyz",
]
