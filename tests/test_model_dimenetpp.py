"""DimeNet++-specific checks: the torch triplet list equals a brute-force enumeration of
periodic images (only the exact reverse edge excluded), the angular basis makes the
energy depend on an angle at fixed bond lengths, collinear triplets stay finite, and the
triplet count grows linearly with the number of atoms."""

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms

from potlab.graph import build_graph, edge_vectors
from potlab.models import build_model, get_model_class
from potlab.models.dimenetpp import spherical_bessel, spherical_bessel_zeros, triplets
from potlab.potential import Potential


def _triplet_set(atoms, cutoff):
    """(j, i, S_i, k, S_k) for every triplet k -> j -> i found by :func:`triplets`:
    atom i's image at shift S_i and atom k's image at shift S_k, seen from atom j at home."""
    g = build_graph([atoms], cutoff)
    idx_kj, idx_ji = triplets(g.edge_index, g.shifts, g.num_nodes)
    snd, rcv, S = g.edge_index[0].tolist(), g.edge_index[1].tolist(), g.unit_shifts.tolist()
    out = []
    for kj, ji in zip(idx_kj.tolist(), idx_ji.tolist()):
        assert rcv[kj] == snd[ji]
        # e_kj = (k -> j, S): j's image at S from k, i.e. k's image at -S from j
        out.append((snd[ji], rcv[ji], tuple(S[ji]), snd[kj], tuple(-s for s in S[kj])))
    assert len(out) == len(set(out))  # no duplicates
    return set(out)


def _brute_force(atoms, cutoff, reach=3):
    """Every pair of distinct neighbour images (i, S_i) != (k, S_k) of each atom j."""
    pos, cell, n = atoms.positions, atoms.cell.array, len(atoms)
    ranges = [range(-reach, reach + 1) if p else range(1) for p in atoms.pbc]
    shifts = list(itertools.product(*ranges))
    expected = set()
    for j in range(n):
        nbrs = [
            (a, s) for a in range(n) for s in shifts
            if 1e-8 < np.linalg.norm(pos[a] + np.array(s) @ cell - pos[j]) < cutoff
        ]
        for (i, si), (k, sk) in itertools.permutations(nbrs, 2):
            expected.add((j, i, si, k, sk))
    return expected


@pytest.mark.parametrize(
    "atoms",
    [
        Atoms("Li", cell=np.eye(3) * 2.6, pbc=True),  # k == i always: only own images
        Atoms("LiS", scaled_positions=[[0, 0, 0], [0.4, 0.55, 0.5]],
              cell=[[3.1, 0, 0], [0.4, 2.9, 0], [0.2, -0.3, 3.4]], pbc=True),
        Atoms("LiS", positions=[[0, 0, 0], [1.1, 0.3, 0.8]],
              cell=[[3.0, 0, 0], [0, 3.2, 0], [0, 0, 9.0]], pbc=[True, True, False]),
    ],
    ids=["one-atom-cubic", "triclinic-pair", "slab"],
)
def test_triplets_match_brute_force_with_periodic_images(atoms):
    cutoff = 4.0
    got = _triplet_set(atoms, cutoff)
    assert got == _brute_force(atoms, cutoff)
    assert len(got) > 0


def test_only_the_exact_reverse_edge_is_excluded():
    """One atom in a cube: every edge j -> i has k == i for all incoming edges; exactly one
    of them (the reverse, opposite shift) is dropped."""
    atoms = Atoms("Li", cell=np.eye(3) * 2.6, pbc=True)
    g = build_graph([atoms], 4.0)
    idx_kj, idx_ji = triplets(g.edge_index, g.shifts, g.num_nodes)
    n_edges = g.edge_index.shape[1]
    assert len(idx_kj) == n_edges * (n_edges - 1)
    counts = torch.bincount(idx_ji, minlength=n_edges)
    assert (counts == n_edges - 1).all()
    reverse = (g.unit_shifts[idx_kj] == -g.unit_shifts[idx_ji]).all(-1)
    assert not reverse.any()


def test_triplet_count_is_linear_in_atoms(li3ps4_frames):
    atoms = li3ps4_frames[0]
    n1 = len(triplets(*_graph_args(atoms))[0])
    n8 = len(triplets(*_graph_args(atoms.repeat((2, 2, 2))))[0])
    assert n8 == 8 * n1


def _graph_args(atoms):
    g = build_graph([atoms], 4.0)
    return g.edge_index, g.shifts, g.num_nodes


def _bent(angle_deg, d=3.0):
    a = np.radians(angle_deg)
    return Atoms("OHH", positions=[[0, 0, 0], [d, 0, 0], [d * np.cos(a), d * np.sin(a), 0]])


def test_energy_depends_on_the_angle_at_equal_distances():
    """Two bonds of 2.2 A from the centre at 140 and 170 degrees: the H-H distance (4.1 and
    4.4 A) is beyond the 4 A cutoff, so the graph's edge lengths are identical and only the
    angle differs. With only l = 0 in the spherical basis the model is angle-blind (the
    control); with the default degrees the energy must change."""
    a, b = _bent(140.0, d=2.2), _bent(170.0, d=2.2)
    ga, gb = build_graph([a], 4.0), build_graph([b], 4.0)
    assert ga.edge_index.shape[1] == gb.edge_index.shape[1] == 4
    np.testing.assert_allclose(
        np.sort(edge_vectors(ga)[1].numpy()), np.sort(edge_vectors(gb)[1].numpy()), atol=1e-12
    )
    for num_spherical in (1, 3):
        torch.manual_seed(0)
        model = build_model(
            "dimenetpp", {"preset": "tiny", "cutoff": 4.0, "num_spherical": num_spherical}, [1, 8]
        ).double()
        with torch.no_grad():
            ea, eb = float(model(ga).sum()), float(model(gb).sum())
        if num_spherical == 1:
            assert ea == pytest.approx(eb, abs=1e-12)
        else:
            assert abs(ea - eb) > 1e-4


def test_collinear_triplets_have_finite_second_derivatives():
    atoms = _bent(180.0, d=1.5)  # H-O-H in a line, and the H-H edge at 3 A
    pot = Potential("dimenetpp", {"preset": "tiny", "cutoff": 4.0}, [1, 8]).double()
    out = pot(pot.graph([atoms]), forces=True, training=True)
    assert torch.isfinite(out["forces"]).all()
    loss = (out["forces"] ** 2).sum()
    grads = torch.autograd.grad(loss, list(pot.parameters()), allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_spherical_bessel_zeros():
    z = spherical_bessel_zeros(4, 3)
    np.testing.assert_allclose(z[0], np.pi * np.arange(1, 4))
    np.testing.assert_allclose(z[1, 0], 4.493409457909064, rtol=1e-12)  # tan x = x
    for l in range(4):
        assert np.abs(spherical_bessel(z[l], l)[l]).max() < 1e-12


def test_presets():
    cls = get_model_class("dimenetpp")
    assert cls.presets["seed000"]["hidden_channels"] == 128
    assert cls.presets["seed000"]["cutoff"] == 6.0
    model = build_model("dimenetpp", {"preset": "seed000"}, [3, 15, 16])
    assert model.cutoff == 6.0 and model.config.hidden_channels == 128
