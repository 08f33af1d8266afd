"""SPICE-style HDF5 reader: hartree and bohr converted to eV and A."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from potlab.data.errors import DataError
from potlab.data.readers.common import (
    Index,
    _check_exists,
    _finish,
    _label,
    _select,
    _to_str,
)

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
    try:
        handle = h5py.File(path, "r")
    except Exception as err:
        raise DataError(path, f"could not open as HDF5: {err}") from err
    try:
        with handle:
            frames = _read_all(handle, path, index, require_energy, require_forces, subset_key)
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError) as err:
        # a damaged file or an unexpected layout (h5py raises these for both)
        raise DataError(path, f"unexpected HDF5 content: {type(err).__name__}: {err}") from None
    return _finish(frames, path, require_energy, require_forces)


def _read_all(handle, path: Path, index: Index, require_energy: bool, require_forces: bool,
              subset_key: str) -> list[Atoms]:
    import h5py

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
    return [selected[frame] for frame in wanted]


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
    m = positions.shape[0] if positions.ndim else 0
    if positions.ndim != 3 or positions.shape[1:] != (len(numbers), 3):
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
