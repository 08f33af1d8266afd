"""Validation: every kind of bad input fails at read time naming file, frame and field."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
from ase import Atoms

from potlab.data import (
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    REF_STRESS_KEY,
    SOURCE_INDEX_KEY,
    DataError,
    read_frames,
    validate_frames,
)

HEADER = 'Properties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy={energy} pbc="F F F"'
GOOD = (
    "3\n"
    + HEADER.format(energy=-14.2)
    + "\nO 0 0 0 0.1 0 0\nH 0.96 0 0 -0.1 0 0\nH 0 0.96 0 0 0 0\n"
)


def xyz_with_bad_frame_2(tmp_path, bad: str, name: str = "train.xyz"):
    """Frames 0, 1 and 3 are good; frame 2 is ``bad``."""
    path = tmp_path / name
    path.write_text(GOOD + GOOD + bad + GOOD)
    return path


def read_error(path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        read_frames(path, **kwargs)
    return info.value


def assert_located(err: DataError, path, frame: int, field: str) -> None:
    assert err.file == str(path)
    assert err.frame == frame
    assert err.field == field
    message = str(err)
    assert message.startswith(f"{path}: frame {frame}: field {field!r}: ")


def test_nan_in_forces(tmp_path):
    bad = "2\n" + HEADER.format(energy=-1.0) + "\nH 0 0 0 nan 0 0\nH 0 0 0.74 0 0 0\n"
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, REF_FORCES_KEY)
    assert "NaN" in str(err)
    assert str(err) == f"{path}: frame 2: field 'REF_forces': contains NaN (atom 0)"


def test_inf_in_energy(tmp_path):
    bad = "2\n" + HEADER.format(energy="inf") + "\nH 0 0 0 0 0 0\nH 0 0 0.74 0 0 0\n"
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, REF_ENERGY_KEY)
    assert "inf" in str(err)


def test_forces_shape_mismatch_extxyz(tmp_path):
    bad = (
        '2\nProperties=species:S:1:pos:R:3:REF_forces:R:2 REF_energy=-1.0 pbc="F F F"\n'
        "H 0 0 0 0 0\nH 0 0 0.74 0 0\n"
    )
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, REF_FORCES_KEY)
    assert "(2, 2)" in str(err) and "(2, 3)" in str(err)


def test_forces_shape_mismatch_npz(tmp_path):
    path = tmp_path / "md17.npz"
    np.savez(
        path,
        nuclear_charges=np.array([1, 1]),
        coords=np.zeros((4, 2, 3)) + [[0, 0, 0], [0, 0, 0.74]],
        energies=np.zeros(4),
        forces=np.zeros((4, 3, 3)),  # one atom too many
    )
    err = read_error(path)
    assert_located(err, path, 0, REF_FORCES_KEY)


def test_missing_forces(tmp_path):
    bad = '2\nProperties=species:S:1:pos:R:3 REF_energy=-1.0 pbc="F F F"\nH 0 0 0\nH 0 0 0.74\n'
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, REF_FORCES_KEY)
    assert "missing" in str(err)
    # allowed when forces are not required
    frames = read_frames(path, require_forces=False)
    assert len(frames) == 4
    assert REF_FORCES_KEY not in frames[2].arrays


def test_missing_energy(tmp_path):
    bad = '2\nProperties=species:S:1:pos:R:3:REF_forces:R:3 pbc="F F F"\nH 0 0 0 0 0 0\nH 0 0 1 0 0 0\n'
    path = xyz_with_bad_frame_2(tmp_path, bad)
    assert_located(read_error(path), path, 2, REF_ENERGY_KEY)
    assert len(read_frames(path, require_energy=False)) == 4


def test_unknown_element(tmp_path):
    bad = "2\n" + HEADER.format(energy=-1.0) + "\nX 0 0 0 0 0 0\nH 0 0 0.74 0 0 0\n"
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, "numbers")
    assert "'X'" in str(err)


def test_element_not_allowed():
    frames = [
        Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]),
        Atoms("HCl", [[0] * 3, [0, 0, 1.3]]),
    ]
    for atoms in frames:
        atoms.info[REF_ENERGY_KEY] = -1.0
        atoms.arrays[REF_FORCES_KEY] = np.zeros((2, 3))
    validate_frames(frames, file="mix.xyz")  # every real element is fine by default
    with pytest.raises(DataError) as info:
        validate_frames(frames, file="mix.xyz", allowed_elements=[1, 8])
    assert info.value.frame == 1 and info.value.field == "numbers"
    assert "Cl" in str(info.value)


def test_periodic_frame_without_cell(tmp_path):
    bad = (
        '2\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=-1.0 pbc="T T T"\n'
        "H 0 0 0 0 0 0\nH 0 0 0.74 0 0 0\n"
    )
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, "cell")


def test_degenerate_cell_in_periodic_direction():
    # two equal lattice vectors: volume zero though no vector is zero
    atoms = Atoms("H", cell=[[3, 0, 0], [3, 0, 0], [0, 0, 3]], pbc=True)
    atoms.info[REF_ENERGY_KEY] = 0.0
    atoms.arrays[REF_FORCES_KEY] = np.zeros((1, 3))
    with pytest.raises(DataError) as info:
        validate_frames([atoms], file="cells.xyz")
    assert info.value.field == "cell"
    # a slab periodic in x and y only needs those two vectors
    slab = Atoms("H", cell=[[3, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=[True, True, False])
    slab.info[REF_ENERGY_KEY] = 0.0
    slab.arrays[REF_FORCES_KEY] = np.zeros((1, 3))
    validate_frames([slab], file="cells.xyz")


def test_zero_atoms_and_nan_positions():
    empty = Atoms()
    empty.info[REF_ENERGY_KEY] = 0.0
    with pytest.raises(DataError) as info:
        validate_frames([empty], file="e.xyz", require_forces=False)
    assert info.value.frame == 0 and "zero atoms" in str(info.value)

    atoms = Atoms("H2", positions=[[0, 0, 0], [0, np.nan, 0]])
    atoms.info[REF_ENERGY_KEY] = 0.0
    atoms.arrays[REF_FORCES_KEY] = np.zeros((2, 3))
    atoms.info[SOURCE_INDEX_KEY] = 41  # index in the file wins over position in the list
    with pytest.raises(DataError) as info:
        validate_frames([atoms], file="p.xyz")
    assert info.value.frame == 41 and info.value.field == "positions"


def test_nan_in_stress():
    atoms = Atoms("H", cell=np.eye(3) * 3, pbc=True)
    atoms.info[REF_ENERGY_KEY] = 0.0
    atoms.arrays[REF_FORCES_KEY] = np.zeros((1, 3))
    atoms.info[REF_STRESS_KEY] = np.array([0, 0, np.nan, 0, 0, 0.0])
    with pytest.raises(DataError) as info:
        validate_frames([atoms], file="s.xyz")
    assert info.value.field == REF_STRESS_KEY


def test_hdf5_nan_energy_names_group(tmp_path):
    path = tmp_path / "spice.h5"
    with h5py.File(path, "w") as f:
        for name, energies in (("a_ok", [1.0, 2.0]), ("b_bad", [1.0, 2.0, np.nan])):
            g = f.create_group(name)
            g["atomic_numbers"] = np.array([1, 1])
            g["conformations"] = np.zeros((len(energies), 2, 3)) + [[0, 0, 0], [0, 0, 1.4]]
            g["dft_total_energy"] = np.array(energies)
            g["dft_total_gradient"] = np.zeros((len(energies), 2, 3))
    err = read_error(path)
    assert err.group == "b_bad"
    assert err.frame == 4  # 2 conformations of a_ok, then the third of b_bad
    assert err.field == REF_ENERGY_KEY
    assert str(err).startswith(f"{path}: group 'b_bad': frame 4: field 'REF_energy'")


def test_data_error_is_value_error_and_pickles():
    err = DataError("train.xyz", "contains NaN", frame=17, field="REF_forces")
    assert isinstance(err, ValueError)
    assert str(err) == "train.xyz: frame 17: field 'REF_forces': contains NaN"
    back = pickle.loads(pickle.dumps(err))
    assert (back.file, back.frame, back.field, str(back)) == (
        err.file,
        err.frame,
        err.field,
        str(err),
    )


def test_non_numeric_energy(tmp_path):
    bad = "2\n" + HEADER.format(energy="unconverged") + "\nH 0 0 0 0 0 0\nH 0 0 0.74 0 0 0\n"
    path = xyz_with_bad_frame_2(tmp_path, bad)
    err = read_error(path)
    assert_located(err, path, 2, REF_ENERGY_KEY)
    assert "unconverged" in str(err)
