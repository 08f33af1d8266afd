"""SO3krates: Euclidean variables rotate by Wigner-D matrices while features and the
per-degree contractions stay invariant; the attention depends on the EV contraction."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from scipy.spatial.transform import Rotation

from potlab.graph import build_graph, edge_vectors
from potlab.models import build_model
from potlab.models.so3krates import degree_contraction, spherical_harmonics


@pytest.fixture
def ethanol():
    m = molecule("CH3CH2OH")
    m.rattle(0.05, seed=3)
    return m


def tiny(elements, **kw):
    return build_model("so3krates", {"preset": "tiny", **kw}, elements).double()


def rep(model, atoms):
    f, x = model.representation(build_graph([atoms], model.cutoff))
    return f.detach(), x.detach()


def wigner_d(R, l_max):
    from e3nn import o3

    irreps = o3.Irreps("+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(l_max + 1)))
    return irreps.D_from_matrix(torch.from_numpy(R)).double()


def test_euclidean_variables_rotate_by_wigner_d(ethanol, li3ps4_frames):
    model = tiny([1, 3, 6, 8, 15, 16])
    R = Rotation.random(random_state=5).as_matrix()
    D = wigner_d(R, model.config.l_max)
    for atoms in (ethanol, li3ps4_frames[2]):
        f, x = rep(model, atoms)
        assert x.shape == (len(atoms), 16)
        moved = atoms.copy()
        moved.positions = atoms.positions @ R.T
        if atoms.pbc.any():
            moved.set_cell(atoms.cell.array @ R.T, scale_atoms=False)
        f2, x2 = rep(model, moved)
        torch.testing.assert_close(f2, f, atol=1e-10, rtol=1e-10)  # invariant features
        torch.testing.assert_close(x2, x @ D.T, atol=1e-10, rtol=1e-10)  # x -> D(R) x
        assert (x2 - x)[:, 1:].abs().max() > 1e-2  # the l >= 1 components do change
        c, c2 = (degree_contraction(a, a, model.degree_onehot) for a in (x, x2))
        torch.testing.assert_close(c2, c, atol=1e-10, rtol=1e-10)  # sum_m x_lm^2 invariant


def test_initial_euclidean_variables_are_eq4(ethanol):
    model = build_model("so3krates", {"preset": "tiny", "num_layers": 1}, [1, 6, 8],
                        avg_num_neighbors=4.0).double()
    batch = build_graph([ethanol], model.cutoff)
    vec, r = edge_vectors(batch)
    sh = spherical_harmonics([0, 1, 2, 3], vec)
    assert sh[:, 1:4].norm(dim=1).detach().numpy() == pytest.approx(1.0)  # |Y_1| = 1
    i = 4
    mask = batch.edge_index[0] == i
    x0 = (model.fcut(r[mask])[:, None] * sh[mask]).sum(0) / 4.0
    manual = 0.5 * (np.cos(np.pi * r[mask].numpy() / model.cutoff) + 1)
    assert model.fcut(r[mask]).numpy() == pytest.approx(manual)
    # the block updates x additively and multiplicatively; with zeroed attention and
    # interaction outputs, the representation's x is exactly eq. 4
    attention, interaction = model.blocks[0]
    with torch.no_grad():
        n_f = model.config.num_features  # rows past F feed the EV attention alpha^l
        attention.filter[-1].weight[n_f:] = 0.0
        attention.filter[-1].bias[n_f:] = 0.0
        interaction.mlp[-1].weight.zero_()
        interaction.mlp[-1].bias.zero_()
    _, x = rep(model, ethanol)
    torch.testing.assert_close(x[i], x0.detach(), atol=1e-12, rtol=1e-12)


def test_attention_depends_on_ev_contraction(ethanol):
    model = tiny([1, 6, 8])
    attention = model.blocks[0][0]
    batch = build_graph([ethanol], model.cutoff)
    _, r = edge_vectors(batch)
    f = torch.randn(len(ethanol), model.config.num_features, dtype=torch.float64)
    rbf = model.rbf(r)
    c = torch.randn(r.shape[0], model.config.l_max + 1, dtype=torch.float64)
    a1, ax1 = attention.coefficients(f, rbf, c, batch.edge_index)
    a2, ax2 = attention.coefficients(f, rbf, c + 0.5, batch.edge_index)
    assert a1.shape == (r.shape[0], model.config.num_heads)
    assert ax1.shape == (r.shape[0], model.config.l_max + 1)
    assert (a1 - a2).abs().max() > 1e-3 and (ax1 - ax2).abs().max() > 1e-3
    # and the energy sees it: cutting the contraction out of the filter changes E
    g = build_graph([ethanol], model.cutoff)
    e = model(g).sum().item()
    n_rbf = model.config.num_rbf
    with torch.no_grad():
        for block, _ in model.blocks:
            block.filter[0].weight[:, n_rbf:] = 0.0
    assert abs(model(g).sum().item() - e) > 1e-6


def test_presets_and_ev_width(ethanol):
    seed = build_model("so3krates", {"preset": "seed000"}, [3, 15, 16, 32])
    assert seed.cutoff == 6.0 and seed.config.num_features == 128 and seed.config.l_max == 3
    # one EV of (l_max+1)^2 components per atom, not F channels per degree
    _, x = rep(tiny([1, 6, 8], l_max=1), ethanol)
    assert x.shape == (len(ethanol), 4)
    with pytest.raises(ValueError, match="divisible"):
        build_model("so3krates", {"num_features": 10, "num_heads": 4}, [1])
