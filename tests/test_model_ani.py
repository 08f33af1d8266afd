"""ANI: the AEV against a direct numpy implementation of the ANI formulas, its
invariance, the triplet construction and the per-element networks."""

import math

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.neighborlist import neighbor_list
from scipy.spatial.transform import Rotation

from potlab.graph import build_graph
from potlab.models import build_model
from potlab.models.ani import ANI2X_HIDDEN, neighbour_pairs


def fc(r, rc):
    return 0.5 * (np.cos(np.pi * r / rc) + 1.0) * (r < rc)


def aev_numpy(atoms, i, elements, p):
    """AEV of atom i written out from ANI-1/ANI-2x (TorchANI conventions: 0.25 radial
    prefactor, 0.95 cos scaling), with an independent neighbour list (ASE)."""
    rcr, rca = p["cutoff"], p["angular_cutoff"]
    shf_r = np.linspace(0.8, rcr, p["num_radial_shifts"] + 1)[:-1]
    shf_a = np.linspace(0.8, rca, p["num_angular_shifts"] + 1)[:-1]
    nz = p["num_angle_sections"]
    shf_z = (2 * np.arange(nz) + 1) * np.pi / (2 * nz)
    idx, jdx, D = neighbor_list("ijD", atoms, max(rcr, rca))
    sel = idx == i
    vecs, nbr = D[sel], jdx[sel]
    spec = np.array([elements.index(z) for z in atoms.numbers[nbr]])
    ns = len(elements)
    radial = np.zeros((ns, len(shf_r)))
    for v, s in zip(vecs, spec):
        r = np.linalg.norm(v)
        if r < rcr:
            radial[s] += 0.25 * np.exp(-p["eta_radial"] * (r - shf_r) ** 2) * fc(r, rcr)
    pairs = [(s, t) for s in range(ns) for t in range(s, ns)]
    angular = np.zeros((len(pairs), len(shf_a), nz))
    for a in range(len(vecs)):
        for b in range(a + 1, len(vecs)):
            ra, rb = np.linalg.norm(vecs[a]), np.linalg.norm(vecs[b])
            if ra >= rca or rb >= rca:
                continue
            theta = math.acos(0.95 * vecs[a] @ vecs[b] / (ra * rb))
            f1 = 2.0 * ((1 + np.cos(theta - shf_z)) / 2) ** p["zeta"]
            f2 = np.exp(-p["eta_angular"] * ((ra + rb) / 2 - shf_a) ** 2)
            pair = pairs.index(tuple(sorted((spec[a], spec[b]))))
            angular[pair] += np.outer(f2, f1) * fc(ra, rca) * fc(rb, rca)
    return np.concatenate([radial.ravel(), angular.ravel()])


ANI2X = {"cutoff": 5.1, "angular_cutoff": 3.5, "eta_radial": 19.7, "num_radial_shifts": 16,
         "zeta": 14.1, "num_angle_sections": 4, "eta_angular": 12.5, "num_angular_shifts": 8}


@pytest.fixture
def ethanol():
    m = molecule("CH3CH2OH")
    m.rattle(0.05, seed=3)
    return m


def model_aev(model, atoms):
    return model.aev(build_graph([atoms], model.cutoff)).detach().numpy()


def test_defaults_are_ani2x_and_seed002_table1():
    model = build_model("ani", {}, [1, 6, 8])
    assert model.cutoff == 5.1
    assert model.aev_computer.shf_r.numpy() == pytest.approx(
        [0.8, 1.06875, 1.3375, 1.60625, 1.875, 2.14375, 2.4125, 2.68125, 2.95, 3.21875,
         3.4875, 3.75625, 4.025, 4.29375, 4.5625, 4.83125], abs=1e-6)
    assert model.aev_computer.shf_a.numpy() == pytest.approx(
        [0.8, 1.1375, 1.475, 1.8125, 2.15, 2.4875, 2.825, 3.1625], abs=1e-6)
    assert model.aev_computer.shf_z.numpy() == pytest.approx(
        [0.39269908, 1.1780972, 1.9634954, 2.7488936], abs=1e-6)
    # 7 species in ANI-2x give its 1008-long AEV
    assert build_model("ani", {}, [1, 6, 7, 8, 9, 16, 17]).aev_computer.length == 1008
    widths = [[m.out_features for m in net if isinstance(m, torch.nn.Linear)]
              for net in model.networks.nets]
    assert widths[0] == [256, 192, 160, 1] and widths[1] == [224, 192, 160, 1]  # H, C
    assert ANI2X_HIDDEN[1] == [256, 192, 160]
    acts = [type(m).__name__ for m in model.networks.nets[0]]
    assert acts.count("GELU") == 3


def test_aev_matches_numpy_formulas_molecule(ethanol):
    elements = [1, 6, 8]
    model = build_model("ani", {}, elements).double()
    aev = model_aev(model, ethanol)
    for i in (0, 2, 8):  # C, O, H
        ref = aev_numpy(ethanol, i, elements, ANI2X)
        assert np.abs(ref).max() > 0.1
        np.testing.assert_allclose(aev[i], ref, rtol=1e-10, atol=1e-12)


def test_aev_matches_numpy_formulas_periodic(li3ps4_frames):
    atoms = li3ps4_frames[0]
    elements = sorted({int(z) for z in atoms.numbers})
    model = build_model("ani", {}, elements).double()
    aev = model_aev(model, atoms)
    for i in (0, 7, 15):
        np.testing.assert_allclose(aev[i], aev_numpy(atoms, i, elements, ANI2X),
                                   rtol=1e-10, atol=1e-12)


def test_aev_is_rotation_invariant_and_local(ethanol):
    model = build_model("ani", {}, [1, 6, 8]).double()
    ref = model_aev(model, ethanol)
    moved = ethanol.copy()
    moved.positions = ethanol.positions @ Rotation.random(random_state=2).as_matrix().T + 1.7
    np.testing.assert_allclose(model_aev(model, moved), ref, atol=1e-12)
    far = ethanol.copy()
    far.positions[0] += [20.0, 0, 0]  # C0 leaves everyone's cutoff
    assert np.all(model_aev(model, far)[0] == 0)


def test_neighbour_pairs_are_all_unordered_pairs_per_centre():
    centre = torch.tensor([2, 0, 2, 1, 2, 0, 3, 2])
    a, b = neighbour_pairs(centre, num_nodes=5)
    got = sorted(tuple(sorted(p)) for p in zip(a.tolist(), b.tolist()))
    want = sorted((x, y) for x in range(8) for y in range(x + 1, 8) if centre[x] == centre[y])
    assert got == want  # centre 2 has 4 edges -> 6 pairs, centre 0 -> 1, others none
    a, b = neighbour_pairs(torch.zeros(0, dtype=torch.int64), num_nodes=3)
    assert a.numel() == 0 and b.numel() == 0


def test_each_element_has_its_own_network(ethanol):
    torch.manual_seed(0)
    model = build_model("ani", {"preset": "tiny"}, [1, 6, 8]).double()
    s = model.species_index(torch.from_numpy(ethanol.numbers))
    aev = model.aev(build_graph([ethanol], model.cutoff))
    nets = model.networks
    as_h = nets(aev, torch.zeros_like(s))  # every atom evaluated with the H network
    as_c = nets(aev, torch.ones_like(s))
    assert not torch.allclose(as_h, as_c)
    # the grouped evaluation equals each atom through its own element's MLP
    e = nets(aev, s)
    for k in range(len(s)):
        assert e[k].item() == pytest.approx(nets.nets[int(s[k])](aev[k]).item(), rel=1e-12)
    # changing the oxygen network moves only the oxygen atom's energy
    with torch.no_grad():
        nets.nets[2][-1].bias += 1.0
    diff = (nets(aev, s) - e).detach().numpy()
    assert diff[ethanol.numbers == 8] == pytest.approx(1.0)
    assert np.all(diff[ethanol.numbers != 8] == 0)


def test_graph_cutoff_is_larger_of_radial_and_angular():
    assert build_model("ani", {"cutoff": 3.0, "angular_cutoff": 4.0}, [1]).cutoff == 4.0
    assert build_model("ani", {"preset": "seed000"}, [1]).cutoff == 6.0
