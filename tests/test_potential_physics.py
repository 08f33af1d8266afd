"""Physics every registered architecture must obey (run automatically for each one):
invariance of E under rotation, translation and permutation, equivariance of F,
F = -dE/dR and stress = (1/V) dE/d(strain) by finite differences, a batch equals its
frames one by one, float64/float32, and a save/load round trip."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from conftest import tiny_params
from scipy.spatial.transform import Rotation

from potlab.models import available
from potlab.potential import Potential, load

ARCHS = sorted(available())


def make(name, elements, dtype=torch.float64):
    return Potential(name, tiny_params(name), elements, e0={1: -13.6, 6: -1000.0, 8: -2000.0}).to(dtype)


def evaluate(pot, atoms, stress=False):
    out = pot(pot.graph([atoms]), forces=True, stress=stress)
    return {k: v.detach().numpy() for k, v in out.items()}


@pytest.fixture
def ethanol():
    m = molecule("CH3CH2OH")
    m.rattle(0.05, seed=3)
    return m


@pytest.fixture
def crystal(li3ps4_frames):
    return li3ps4_frames[0].copy()


@pytest.mark.parametrize("name", ARCHS)
def test_rotation_translation_permutation(name, ethanol, crystal):
    for atoms in (ethanol, crystal):
        pot = make(name, sorted(set(atoms.numbers)))
        ref = evaluate(pot, atoms)
        R = Rotation.random(random_state=7).as_matrix()
        moved = atoms.copy()
        moved.positions = atoms.positions @ R.T + np.array([0.3, -1.2, 2.0])
        if atoms.pbc.any():
            moved.set_cell(atoms.cell.array @ R.T, scale_atoms=False)
        out = evaluate(pot, moved)
        assert out["energy"][0] == pytest.approx(ref["energy"][0], abs=1e-8)
        np.testing.assert_allclose(out["forces"], ref["forces"] @ R.T, atol=1e-8)
        perm = np.random.default_rng(1).permutation(len(atoms))
        out = evaluate(pot, atoms[perm])
        assert out["energy"][0] == pytest.approx(ref["energy"][0], abs=1e-8)
        np.testing.assert_allclose(out["forces"], ref["forces"][perm], atol=1e-8)


@pytest.mark.parametrize("name", ARCHS)
def test_forces_are_minus_energy_gradient(name, ethanol, crystal):
    h = 1e-5
    for atoms in (ethanol, crystal):
        pot = make(name, sorted(set(atoms.numbers)))
        f = evaluate(pot, atoms)["forces"]
        assert np.abs(f).max() > 1e-4  # not trivially zero
        for a, c in [(0, 0), (len(atoms) // 2, 1), (len(atoms) - 1, 2)]:
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, c] += h
            minus.positions[a, c] -= h
            fd = -(evaluate(pot, plus)["energy"][0] - evaluate(pot, minus)["energy"][0]) / (2 * h)
            assert f[a, c] == pytest.approx(fd, abs=1e-6, rel=1e-5)


@pytest.mark.parametrize("name", ARCHS)
def test_stress_is_strain_derivative(name, crystal):
    pot = make(name, sorted(set(crystal.numbers)))
    s = evaluate(pot, crystal, stress=True)["stress"][0]
    assert np.abs(s).max() > 1e-7
    h, vol = 1e-5, crystal.get_volume()
    for i, j in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]:
        e = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] += sign * h / 2
            eps[j, i] += sign * h / 2
            strained = crystal.copy()
            strained.set_cell(crystal.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            e.append(evaluate(pot, strained)["energy"][0])
        fd = (e[0] - e[1]) / (2 * h) / vol
        assert s[i, j] == pytest.approx(fd, abs=1e-8, rel=1e-5)
    np.testing.assert_allclose(s, s.T, atol=1e-12)


@pytest.mark.parametrize("name", ARCHS)
def test_batch_equals_single(name, ethanol, li3ps4_frames):
    frames = [li3ps4_frames[0], ethanol, li3ps4_frames[5]]
    elements = sorted({int(z) for a in frames for z in a.numbers})
    pot = make(name, elements)
    together = pot(pot.graph(frames), forces=True, stress=True)
    start = 0
    for k, a in enumerate(frames):
        one = evaluate(pot, a, stress=True)
        assert together["energy"][k].item() == pytest.approx(one["energy"][0], abs=1e-9)
        np.testing.assert_allclose(together["forces"][start : start + len(a)].detach(), one["forces"], atol=1e-9)
        np.testing.assert_allclose(together["stress"][k].detach(), one["stress"][0], atol=1e-12)
        start += len(a)
    assert np.all(together["stress"][1].detach().numpy() == 0)  # molecule: no cell, no stress


@pytest.mark.parametrize("name", ARCHS)
def test_dtypes_and_save_load_round_trip(name, tmp_path, crystal):
    pot = make(name, sorted(set(crystal.numbers)))
    path = pot.save(tmp_path / "model.pt")
    again = load(path)
    a, b = evaluate(pot, crystal, stress=True), evaluate(again, crystal, stress=True)
    assert again.dtype == torch.float64
    assert a["energy"][0] == b["energy"][0]
    np.testing.assert_array_equal(a["forces"], b["forces"])
    single = load(path, dtype="float32")
    assert single.dtype == torch.float32
    c = evaluate(single, crystal)
    assert c["forces"].dtype == np.float32
    assert c["energy"][0] == pytest.approx(a["energy"][0], rel=1e-5, abs=1e-4)
    np.testing.assert_allclose(c["forces"], a["forces"], atol=1e-4)


@pytest.mark.parametrize("name", ARCHS)
def test_ase_calculator_and_e0(name, ethanol, tmp_path):
    import potlab

    pot = make(name, [1, 6, 8])
    pot.save(tmp_path / "m.pt")
    calc = potlab.load(tmp_path / "m.pt").calculator()
    ethanol.calc = calc
    e = ethanol.get_potential_energy()
    assert ethanol.get_forces().shape == (9, 3)
    # the per-element reference energies are in the total
    e0 = 2 * -1000.0 + 6 * -13.6 + 1 * -2000.0
    assert abs(e - e0) < 50.0
    assert ethanol.get_potential_energies().sum() == pytest.approx(e, rel=1e-12)


def test_unknown_element_is_refused(ethanol):
    pot = make("schnet", [1, 6])  # no oxygen
    with pytest.raises(ValueError, match="Z=\\[8\\]"):
        evaluate(pot, ethanol)
