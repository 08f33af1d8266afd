"""PaiNN-specific checks: vector features are equivariant (rotate as vectors, flip under
inversion), scalars invariant; atoms without neighbours and second derivatives stay finite."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from potlab.graph import build_graph
from potlab.models import build_model, get_model_class
from potlab.potential import Potential


def _model(elements, **over):
    return build_model("painn", {"preset": "tiny", "cutoff": 4.0, **over}, elements).double()


def _features(model, atoms):
    with torch.no_grad():
        return model.features(build_graph([atoms], model.cutoff))


@pytest.mark.parametrize("periodic", [False, True])
def test_vector_features_rotate_as_vectors(periodic, li3ps4_frames):
    atoms = li3ps4_frames[0].copy() if periodic else molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=2)
    model = _model(sorted(set(atoms.numbers)))
    s, v = _features(model, atoms)  # [n, F], [n, 3, F]
    assert v.abs().max() > 1e-3  # not trivially zero
    R = Rotation.random(random_state=11).as_matrix()
    moved = atoms.copy()
    moved.positions = atoms.positions @ R.T + np.array([1.0, -2.0, 0.5])
    if periodic:
        moved.set_cell(atoms.cell.array @ R.T, scale_atoms=False)
    s2, v2 = _features(model, moved)
    np.testing.assert_allclose(s2, s, atol=1e-10)
    np.testing.assert_allclose(v2, torch.einsum("ab,nbf->naf", torch.from_numpy(R), v), atol=1e-10)


def test_vector_features_flip_under_inversion():
    atoms = molecule("CH3CH2OH")
    model = _model([1, 6, 8])
    s, v = _features(model, atoms)
    inverted = atoms.copy()
    inverted.positions = -atoms.positions
    s2, v2 = _features(model, inverted)
    np.testing.assert_allclose(s2, s, atol=1e-10)
    np.testing.assert_allclose(v2, -v, atol=1e-10)


def test_isolated_atom_and_double_backward_are_finite():
    """An atom with no neighbour has zero vectors: |V v| must still have finite gradients
    (training differentiates the forces again)."""
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [10.0, 0, 0]])  # O far away
    pot = Potential("painn", {"preset": "tiny", "cutoff": 4.0}, [1, 8]).double()
    out = pot(pot.graph([atoms]), forces=True, training=True)
    assert torch.isfinite(out["energy"]).all() and torch.isfinite(out["forces"]).all()
    assert out["forces"][2].abs().max() == 0
    loss = (out["forces"] ** 2).sum()
    grads = torch.autograd.grad(loss, list(pot.parameters()), allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_presets():
    cls = get_model_class("painn")
    assert cls.presets["seed000"]["num_features"] == 128
    assert cls.presets["seed000"]["cutoff"] == 6.0
    model = build_model("painn", {"preset": "seed000"}, [3, 15, 16])
    assert model.cutoff == 6.0 and model.config.num_features == 128
