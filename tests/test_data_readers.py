"""Readers: unit conversion per format, label keys, provenance, round trip, real files."""

from __future__ import annotations

from pathlib import Path

import ase.db
import ase.io
import h5py
import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

import potlab
from potlab.data import (
    CONFIG_TYPE_KEY,
    REF_ENERGY_KEY,
    REF_FORCES_KEY,
    REF_STRESS_KEY,
    SOURCE_FILE_KEY,
    SOURCE_GROUP_KEY,
    SOURCE_INDEX_KEY,
    DataError,
    Dataset,
    read_frames,
    write_extxyz,
)

# real files bundled with the project (the package's default study, the benchmarks' data)
LI3PS4_TRAIN = Path(potlab.__file__).parent / "studies" / "data" / "li3ps4" / "Li3PS4-sample-train.xyz"
RMD17_ETHANOL = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "rmd17" / "rmd17_ethanol_train_01.npz"

KCAL_MOL_IN_EV = units.kcal / units.mol


def assert_text_close(actual, desired) -> None:
    """Equal to the 8 decimals ASE's extxyz writer keeps."""
    np.testing.assert_allclose(actual, desired, rtol=1e-7, atol=1e-7)


def assert_canonical(atoms: Atoms) -> None:
    """Labels in one place: canonical keys, no calculator."""
    assert atoms.calc is None
    assert isinstance(atoms.info[REF_ENERGY_KEY], float)
    assert atoms.arrays[REF_FORCES_KEY].shape == (len(atoms), 3)
    assert isinstance(atoms.info[CONFIG_TYPE_KEY], str)
    assert isinstance(atoms.info[SOURCE_INDEX_KEY], int)


# --- MD17 npz ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [("nuclear_charges", "coords", "energies", "forces"), ("z", "R", "E", "F")],
)
def test_npz_converts_kcal_per_mol_to_ev(tmp_path, names):
    z, r, e, f = names
    path = tmp_path / "tiny.npz"
    coords = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.1]], [[0.0, 0.0, 0.0], [0.0, 0.0, 1.2]]])
    np.savez(
        path,
        **{
            z: np.array([1, 9], dtype=np.uint8),
            r: coords,
            e: np.array([1.0, 2.0]),
            f: np.ones((2, 2, 3)),
        },
    )
    frames = read_frames(path)
    assert len(frames) == 2
    assert frames[0].get_chemical_symbols() == ["H", "F"]
    assert frames[0].info[REF_ENERGY_KEY] == pytest.approx(KCAL_MOL_IN_EV, rel=1e-12)
    assert frames[0].info[REF_ENERGY_KEY] == pytest.approx(0.04336410, abs=1e-6)
    assert frames[1].info[REF_ENERGY_KEY] == pytest.approx(2 * 0.04336410, abs=2e-6)
    np.testing.assert_allclose(frames[0].arrays[REF_FORCES_KEY], KCAL_MOL_IN_EV)
    np.testing.assert_allclose(frames[0].arrays[REF_FORCES_KEY], 0.04336410, atol=1e-6)
    np.testing.assert_allclose(frames[1].positions, coords[1])  # Å stays Å
    assert not frames[0].pbc.any()
    assert frames[1].info[SOURCE_INDEX_KEY] == 1
    assert frames[1].info[SOURCE_FILE_KEY] == str(path)
    for atoms in frames:
        assert_canonical(atoms)


def test_npz_missing_array_names_field(tmp_path):
    path = tmp_path / "nocoords.npz"
    np.savez(path, nuclear_charges=np.array([1]), energies=np.zeros(1), forces=np.zeros((1, 1, 3)))
    with pytest.raises(DataError) as info:
        read_frames(path)
    assert info.value.file == str(path)
    assert info.value.field == "coords"


# --- SPICE-style HDF5 -----------------------------------------------------------------


def write_spice(path: Path, *, nan_in: str | None = None) -> None:
    """Two molecules: 'water' (1 conformation, unit values) and 'hf' (2 conformations)."""
    with h5py.File(path, "w") as f:
        g = f.create_group("water")
        g["atomic_numbers"] = np.array([8, 1, 1], dtype=np.int16)
        conf = np.zeros((1, 3, 3))
        conf[0, 1, 0] = 1.0  # 1 bohr
        conf[0, 2, 1] = 1.0
        g["conformations"] = conf
        g["dft_total_energy"] = np.array([1.0])  # 1 hartree
        g["dft_total_gradient"] = np.ones((1, 3, 3))  # 1 hartree/bohr
        h = f.create_group("hf")
        h["atomic_numbers"] = np.array([1, 9])
        h["conformations"] = np.array([[[0, 0, 0], [0, 0, 1.7]], [[0, 0, 0], [0, 0, 1.8]]])
        h["dft_total_energy"] = np.array([-100.0, -100.1])
        grad = np.zeros((2, 2, 3))
        if nan_in == "hf":
            grad[1, 0, 2] = np.nan
        h["dft_total_gradient"] = grad
        h["subset"] = np.array([b"SPICE Dipeptides Single Points"])


def test_hdf5_converts_hartree_and_bohr(tmp_path):
    path = tmp_path / "spice.h5"
    write_spice(path)
    frames = read_frames(path)
    assert len(frames) == 3
    by_group = {a.info[SOURCE_GROUP_KEY]: a for a in frames}
    water = by_group["water"]
    assert water.info[REF_ENERGY_KEY] == pytest.approx(units.Hartree)
    assert water.info[REF_ENERGY_KEY] == pytest.approx(27.211386, abs=1e-5)
    assert water.positions[1, 0] == pytest.approx(units.Bohr)
    assert water.positions[1, 0] == pytest.approx(0.529177, abs=1e-6)
    np.testing.assert_allclose(water.arrays[REF_FORCES_KEY], -units.Hartree / units.Bohr)
    np.testing.assert_allclose(water.arrays[REF_FORCES_KEY], -51.42208, atol=1e-4)
    assert water.info[CONFIG_TYPE_KEY] == "water"  # group name when no subset
    hf = [a for a in frames if a.info[SOURCE_GROUP_KEY] == "hf"]
    assert {a.info[CONFIG_TYPE_KEY] for a in hf} == {"SPICE Dipeptides Single Points"}
    # frame index counts conformations across groups in file order
    assert sorted(a.info[SOURCE_INDEX_KEY] for a in frames) == [0, 1, 2]
    assert [a.info[SOURCE_INDEX_KEY] for a in frames] == [0, 1, 2]
    for atoms in frames:
        assert_canonical(atoms)
        assert not atoms.pbc.any()


def test_hdf5_index_selects_across_groups(tmp_path):
    path = tmp_path / "spice.hdf5"
    write_spice(path)
    everything = read_frames(path)
    last = read_frames(path, index=-1)
    assert len(last) == 1
    assert last[0].info[SOURCE_INDEX_KEY] == 2
    np.testing.assert_allclose(last[0].positions, everything[2].positions)


def test_hdf5_error_names_group_and_frame(tmp_path):
    path = tmp_path / "spice.h5"
    write_spice(path, nan_in="hf")
    with pytest.raises(DataError) as info:
        read_frames(path)
    err = info.value
    assert err.group == "hf"
    assert err.field == REF_FORCES_KEY
    # h5py iterates groups alphabetically: hf (frames 0, 1), then water (frame 2)
    assert err.frame == 1
    assert "'hf'" in str(err) and "frame 1" in str(err) and "spice.h5" in str(err)


# --- extended XYZ ---------------------------------------------------------------------

XTB_FILE = """\
1
Lattice="20 0 0 0 20 0 0 0 20" Properties=species:S:1:pos:R:3:forces_xtb:R:3 config_type=IsolatedAtom energy_xtb=-10.7 pbc="F F F"
H 0 0 0 0 0 0
3
Properties=species:S:1:pos:R:3:forces_xtb:R:3 energy_xtb=-140.25 pbc="F F F"
O 0.0 0.0 0.0  0.1 0.2 0.3
H 0.96 0.0 0.0  -0.1 0.0 0.0
H -0.24 0.93 0.0  0.0 -0.2 -0.3
"""


def test_extxyz_custom_keys(tmp_path):
    path = tmp_path / "xtb.xyz"
    path.write_text(XTB_FILE)
    frames = read_frames(path, energy_key="energy_xtb", forces_key="forces_xtb")
    assert len(frames) == 2
    water = frames[1]
    assert water.info[REF_ENERGY_KEY] == pytest.approx(-140.25)
    np.testing.assert_allclose(water.arrays[REF_FORCES_KEY][0], [0.1, 0.2, 0.3])
    assert water.info[CONFIG_TYPE_KEY] == "Default"
    assert frames[0].info[CONFIG_TYPE_KEY] == "IsolatedAtom"
    assert water.info[SOURCE_INDEX_KEY] == 1
    # source keys removed: the label lives in one place
    assert "energy_xtb" not in water.info
    assert "forces_xtb" not in water.arrays
    for atoms in frames:
        assert_canonical(atoms)


def test_extxyz_custom_key_without_fallback_to_other_labels(tmp_path):
    """Asking for energy_xtb must not silently return a different energy."""
    path = tmp_path / "xtb.xyz"
    path.write_text(XTB_FILE)
    with pytest.raises(DataError) as info:
        read_frames(path, energy_key="energy_dft", forces_key="forces_xtb")
    assert info.value.field == REF_ENERGY_KEY
    assert info.value.frame == 0


def test_extxyz_calculator_fields(tmp_path):
    """energy=/forces/stress= end up in ASE's SinglePointCalculator; we take them."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        atoms = Atoms("Li2S", positions=rng.uniform(0, 4, (3, 3)), cell=np.eye(3) * 5.0, pbc=True)
        atoms.calc = SinglePointCalculator(
            atoms,
            energy=-10.0 - i,
            free_energy=-10.5 - i,
            forces=rng.normal(size=(3, 3)),
            stress=np.array([0.1, 0.2, 0.3, 0.01, 0.02, 0.03]) * (i + 1),
        )
        frames.append(atoms)
    path = tmp_path / "calc.extxyz"
    ase.io.write(path, frames, format="extxyz")

    read = read_frames(path)
    for original, atoms in zip(frames, read, strict=True):
        assert_canonical(atoms)
        assert atoms.info[REF_ENERGY_KEY] == pytest.approx(original.get_potential_energy())
        assert_text_close(atoms.arrays[REF_FORCES_KEY], original.get_forces())
        assert_text_close(atoms.info[REF_STRESS_KEY], original.get_stress())
        assert atoms.info[REF_STRESS_KEY].shape == (6,)
        assert atoms.pbc.all()

    free = read_frames(path, energy_key="free_energy", forces_key="forces")
    assert free[2].info[REF_ENERGY_KEY] == pytest.approx(-12.5)


def test_extxyz_nine_component_stress(tmp_path):
    path = tmp_path / "stress9.xyz"
    path.write_text(
        "1\n"
        'Lattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3:REF_forces:R:3 '
        'REF_energy=-1.5 REF_stress="1 6 5 6 2 4 5 4 3" pbc="T T T"\n'
        "Si 0 0 0 0 0 0\n"
    )
    (atoms,) = read_frames(path)
    # Voigt order xx yy zz yz xz xy
    np.testing.assert_allclose(atoms.info[REF_STRESS_KEY], [1, 2, 3, 4, 5, 6])


def test_extxyz_parse_error_names_file_and_frame(tmp_path):
    path = tmp_path / "broken.xyz"
    good = '1\nProperties=species:S:1:pos:R:3:REF_forces:R:3 REF_energy=1.0 pbc="F F F"\n'
    path.write_text(
        good + "H 0 0 0 0 0 0\n" + good + "H 0 0 0 0 0 0\n" + good + "H 0 0 oops 0 0 0\n"
    )
    with pytest.raises(DataError) as info:
        read_frames(path)
    assert info.value.file == str(path)
    assert info.value.frame == 2
    assert "broken.xyz" in str(info.value)


def test_index_selection_keeps_file_index(tmp_path):
    path = tmp_path / "xtb.xyz"
    path.write_text(XTB_FILE)
    (last,) = read_frames(path, energy_key="energy_xtb", forces_key="forces_xtb", index="1:")
    assert last.info[SOURCE_INDEX_KEY] == 1
    (first,) = read_frames(path, energy_key="energy_xtb", forces_key="forces_xtb", index=0)
    assert len(first) == 1


def test_unknown_suffix_and_missing_file(tmp_path):
    bad = tmp_path / "frames.pdb"
    bad.write_text("")
    with pytest.raises(DataError, match="frames.pdb"):
        read_frames(bad)
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "nowhere.xyz")


# --- ASE database ---------------------------------------------------------------------


def test_ase_db_calculator_results_and_config_type(tmp_path):
    path = tmp_path / "frames.db"
    rng = np.random.default_rng(1)
    expected = []
    with ase.db.connect(str(path)) as db:
        for i in range(3):
            atoms = Atoms(
                "NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=np.eye(3) * 5.6, pbc=True
            )
            forces = rng.normal(size=(2, 3))
            stress = rng.normal(size=6) * 0.01
            atoms.calc = SinglePointCalculator(atoms, energy=-7.0 - i, forces=forces, stress=stress)
            db.write(atoms, config_type="bulk" if i else "surface")
            expected.append((-7.0 - i, forces, stress))
    frames = read_frames(path)
    assert [a.info[CONFIG_TYPE_KEY] for a in frames] == ["surface", "bulk", "bulk"]
    for atoms, (energy, forces, stress) in zip(frames, expected, strict=True):
        assert_canonical(atoms)
        assert atoms.info[REF_ENERGY_KEY] == pytest.approx(energy)
        np.testing.assert_allclose(atoms.arrays[REF_FORCES_KEY], forces)
        np.testing.assert_allclose(atoms.info[REF_STRESS_KEY], stress)
    assert [a.info[SOURCE_INDEX_KEY] for a in frames] == [0, 1, 2]


def test_ase_db_labels_from_data_and_key_value_pairs(tmp_path):
    path = tmp_path / "labels.db"
    forces = np.arange(6.0).reshape(2, 3)
    with ase.db.connect(str(path)) as db:
        db.write(
            Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]),
            energy_pbe=-31.5,
            data={"forces_pbe": forces},
        )
    (atoms,) = read_frames(path, energy_key="energy_pbe", forces_key="forces_pbe")
    assert atoms.info[REF_ENERGY_KEY] == pytest.approx(-31.5)
    np.testing.assert_allclose(atoms.arrays[REF_FORCES_KEY], forces)
    assert atoms.info[CONFIG_TYPE_KEY] == "Default"


# --- writer round trip, Dataset -------------------------------------------------------


def labelled_frames(n: int = 4) -> list[Atoms]:
    rng = np.random.default_rng(7)
    frames = []
    for i in range(n):
        atoms = Atoms("H2O", positions=rng.normal(size=(3, 3)), cell=np.eye(3) * 6, pbc=i % 2 == 0)
        atoms.info[REF_ENERGY_KEY] = -14.0 - 0.1 * i
        atoms.arrays[REF_FORCES_KEY] = rng.normal(size=(3, 3))
        if i % 2 == 0:
            atoms.info[REF_STRESS_KEY] = rng.normal(size=6) * 1e-3
        atoms.info[CONFIG_TYPE_KEY] = "liquid" if i < 3 else "isolated molecule"
        frames.append(atoms)
    return frames


def test_write_extxyz_round_trip(tmp_path):
    frames = labelled_frames()
    path = write_extxyz(tmp_path / "out" / "train.xyz", frames)
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.xyz"]  # no temp left
    back = read_frames(path)
    assert len(back) == len(frames)
    for original, atoms in zip(frames, back, strict=True):
        assert_canonical(atoms)
        assert_text_close(atoms.positions, original.positions)
        np.testing.assert_array_equal(atoms.pbc, original.pbc)
        assert atoms.info[REF_ENERGY_KEY] == pytest.approx(original.info[REF_ENERGY_KEY])
        assert_text_close(atoms.arrays[REF_FORCES_KEY], original.arrays[REF_FORCES_KEY])
        assert atoms.info[CONFIG_TYPE_KEY] == original.info[CONFIG_TYPE_KEY]
        if REF_STRESS_KEY in original.info:
            assert_text_close(atoms.info[REF_STRESS_KEY], original.info[REF_STRESS_KEY])
        else:
            assert REF_STRESS_KEY not in atoms.info
        assert atoms.info[SOURCE_FILE_KEY] == str(path)


def test_dataset_from_files(tmp_path):
    a = write_extxyz(tmp_path / "a.xyz", labelled_frames(4))
    b = write_extxyz(tmp_path / "b.xyz", labelled_frames(2))
    ds = Dataset.from_files([a, b])
    assert len(ds) == 6
    assert ds.elements == [1, 8]
    assert isinstance(ds[0], Atoms)
    sub = ds[[0, 5]]
    assert isinstance(sub, Dataset) and len(sub) == 2
    assert sub[1].info[SOURCE_FILE_KEY] == str(b)
    assert len(ds[np.array([1, 2, 3])]) == 3
    assert len(ds[1:]) == 5
    np.testing.assert_allclose(ds.energies()[:4], [-14.0, -14.1, -14.2, -14.3])
    assert ds.subsets() == {"liquid": [0, 1, 2, 4, 5], "isolated molecule": [3]}


# --- real files, bundled in the repository ---


def test_real_li3ps4_train():
    frames = read_frames(LI3PS4_TRAIN)
    assert len(frames) == 80
    assert {len(a) for a in frames} <= {16, 32}
    for atoms in frames:
        assert atoms.pbc.all()
        assert atoms.cell.volume > 100.0
        assert_canonical(atoms)
        assert set(atoms.get_chemical_symbols()) == {"Li", "P", "S"}


def test_real_rmd17_ethanol():
    frames = read_frames(RMD17_ETHANOL)
    assert len(frames) == 1000
    assert {len(a) for a in frames} == {9}
    assert sorted(frames[0].get_chemical_symbols()) == sorted(Atoms("C2H6O").get_chemical_symbols())
    energies = np.array([a.info[REF_ENERGY_KEY] for a in frames])
    # rMD17 ethanol is about -97,000 kcal/mol, i.e. about -4,209 eV
    assert np.all((energies > -4215) & (energies < -4200))
    assert not frames[0].pbc.any()
