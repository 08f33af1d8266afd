"""Configuration generators: rattles, isolated molecules, rigid volume scans, liquid boxes,
crystals from CIF."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from potlab.errors import InputError
from potlab.reference.generate import (
    CrystalParams,
    IsolatedParams,
    LiquidParams,
    RattleParams,
    VolumeScanParams,
    augment,
    crystal_structures,
    density,
    isolated_atoms,
    isolated_molecules,
    liquid_box,
    rattle,
    volume_scan,
    whole_molecules,
)

DATA = Path(__file__).parent / "data" / "reference"


@pytest.fixture(scope="module")
def liquid():
    return ase.io.read(DATA / "solvent_liquid.xyz")


def test_rattle_and_seed002_augmentation():
    w = molecule("CH3CH2OH")
    g = rattle([w], RattleParams(copies=200, amplitude=0.1, seed=1))
    d = np.array([a.positions - w.positions for a in g])
    assert len(g) == 200 and d.std() == pytest.approx(0.1, rel=0.05)
    aug = augment([w, molecule("H2O")], copies=2)
    assert len(aug) == 4 and aug[0].info["config_type"] == "augmented"
    du = aug[0].positions - w.positions
    assert np.abs(du).max() <= 0.05 and np.abs(du).max() > 0.03
    assert not np.allclose(aug[0].positions, aug[1].positions)
    assert [a.get_chemical_formula() for a in aug] == ["C2H6O", "C2H6O", "H2O", "H2O"]
    with pytest.raises(ValueError):
        RattleParams(copies=2, amplitdue=0.1)


def test_isolated_molecules_have_the_right_formulas(liquid):
    assert len(liquid) == 160 and liquid.pbc.all()
    mols = isolated_molecules(liquid)
    formulas = Counter(m.get_chemical_formula() for m in mols)
    assert formulas == {"C3H4O3": 4, "C4H8O3": 8}  # 4 EC + 8 EMC
    assert sum(len(m) for m in mols) == 160
    for m in mols:  # whole: every molecule is compact, no bond straddles the box
        assert np.ptp(m.positions, axis=0).max() < 8.5  # box edge 12.85 A
        assert not m.pbc.any()
    boxed = isolated_molecules(liquid, IsolatedParams(box=20.0))
    assert boxed[0].pbc.all() and np.allclose(boxed[0].cell.lengths(), 20.0)
    atoms = isolated_atoms(liquid.get_chemical_symbols())
    assert [a.get_chemical_formula() for a in atoms] == ["C", "O", "H"]
    assert all(a.info["config_type"] == "IsolatedAtom" for a in atoms)


def _intramolecular(frame):
    return [np.linalg.norm(pos[:, None] - pos[None], axis=-1) for _, pos in whole_molecules(frame)]


def test_volume_scan_keeps_molecules_rigid(liquid):
    rho0 = density(liquid)
    scans = volume_scan(liquid, VolumeScanParams(min_density=0.6 * rho0, max_density=1.3 * rho0,
                                                 points=5))
    assert [s.info["density"] for s in scans] == pytest.approx(
        np.linspace(0.6 * rho0, 1.3 * rho0, 5), rel=1e-10)
    ref = _intramolecular(liquid)
    com0 = [liquid.get_masses()[i] @ p / liquid.get_masses()[i].sum()
            for i, p in whole_molecules(liquid)]
    for s in scans:
        got = _intramolecular(s)
        assert len(got) == len(ref) == 12
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, atol=1e-10)
        scale = s.info["volume_scale"]
        com = [s.get_masses()[i] @ p / s.get_masses()[i].sum() for i, p in whole_molecules(s)]
        # centres of mass move with the cell (same fractional coordinates, modulo images)
        f0 = np.linalg.solve(liquid.cell.array.T, np.array(com0).T).T
        f1 = np.linalg.solve(s.cell.array.T, np.array(com).T).T
        df = f1 - f0
        np.testing.assert_allclose(df - np.round(df), 0.0, atol=1e-9)
        assert s.get_volume() == pytest.approx(liquid.get_volume() * scale**3)
    with pytest.raises(ValueError, match="exactly one"):
        VolumeScanParams(scales=[1.0], densities=[1.0])


def test_liquid_box_reaches_density_without_overlaps():
    params = LiquidParams(smiles=["C1COC(=O)O1", "CCOC(=O)OC"], counts=[3, 7], density=1.1,
                          min_distance=1.7, seed=3)
    box = liquid_box(params)
    assert box.get_chemical_formula() == "C37H68O30"  # 3 EC (C3H4O3) + 7 EMC (C4H8O3)
    assert density(box) == pytest.approx(1.1, rel=1e-9)
    d = box.get_all_distances(mic=True)
    mol_of = np.repeat(np.arange(10), [15] * 7 + [10] * 3)  # big molecules placed first
    inter = mol_of[:, None] != mol_of[None, :]
    assert d[inter].min() >= 1.7
    formulas = Counter(m.get_chemical_formula() for m in isolated_molecules(box))
    assert formulas == {"C3H4O3": 3, "C4H8O3": 7}
    with pytest.raises(InputError, match="could not place.*too high to pack"):
        liquid_box(LiquidParams(smiles=["O"], counts=[40], density=3.0, min_distance=2.5,
                                max_attempts=512))


def test_crystal_from_cif_orders_partial_occupancies():
    cif = DATA / "Li3PS4_beta_obelix.cif"
    one, two = crystal_structures(cif, CrystalParams(structures=2, supercell=(1, 1, 2)))
    for s in (one, two):
        assert s.get_chemical_formula() == "Li24P8S32" and s.pbc.all()
        assert s.get_all_distances(mic=True)[np.triu_indices(len(s), 1)].min() > 1.2
    assert not np.allclose(one.positions, two.positions)  # two different orderings
    again = crystal_structures(cif, CrystalParams(structures=1, supercell=(1, 1, 2)))[0]
    np.testing.assert_array_equal(again.positions, one.positions)  # seeded
    np.testing.assert_allclose(one.cell.lengths(), [12.819, 8.2195, 2 * 6.1236], atol=1e-3)
    from potlab.data import DataError

    with pytest.raises(DataError, match="cannot read CIF"):
        crystal_structures(DATA / "SOURCE.md")
