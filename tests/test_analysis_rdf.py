"""RDF physics: ideal gas -> 1, fcc nearest neighbour at a/sqrt2 in cubic and triclinic cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from potlab.analysis.rdf import rdf, rdf_error


def test_ideal_gas_tends_to_one(rng):
    n, box = 150, 10.0
    frames = [Atoms("Ar" * n, positions=rng.random((n, 3)) * box, cell=[box] * 3, pbc=True)
              for _ in range(12)]
    # rmax beyond half the box: periodic images counted (minimum image would fail here)
    res = rdf(frames, rmax=8.0, bins=32)
    tail = res.g[res.r > 2.0]
    assert abs(tail.mean() - 1.0) < 0.02
    assert np.all(np.abs(tail - 1.0) < 0.15)


@pytest.mark.parametrize("cubic", [True, False])
def test_fcc_first_peak(cubic):
    a = 3.6
    cu = bulk("Cu", "fcc", a=a, cubic=cubic)  # primitive cell is triclinic, one atom
    res = rdf(cu, rmax=6.0, bins=117)
    assert abs(res.r[np.argmax(res.g)] - a / np.sqrt(2)) < res.r[1] - res.r[0]
    # 12 nearest neighbours: integral of rho g 4 pi r^2 dr over the first peak
    rho = len(cu) / cu.get_volume()
    shell = 4 / 3 * np.pi * (res.edges[1:] ** 3 - res.edges[:-1] ** 3)
    n1 = (rho * res.g * shell)[res.r < 3.0].sum()
    assert n1 == pytest.approx(12.0)


def test_primitive_and_cubic_cells_agree():
    prim = rdf(bulk("Cu", "fcc", a=3.6), rmax=7.0, bins=117)
    cub = rdf(bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), rmax=7.0, bins=117)
    assert np.allclose(prim.g, cub.g)


def test_partial_rdf_and_symmetry(rng):
    cell = [[6.0, 0, 0], [1.5, 6.0, 0], [0.5, 1.0, 6.0]]
    atoms = Atoms("LiS" * 30, positions=rng.random((60, 3)) * 6, cell=cell, pbc=True)
    g_ls = rdf(atoms, pair="Li-S", rmax=5, bins=20)
    g_sl = rdf(atoms, pair="S-Li", rmax=5, bins=20)
    assert np.allclose(g_ls.g, g_sl.g)
    assert g_ls.pair == "Li-S"
    with pytest.raises(ValueError, match="no Li-Ge pairs"):
        rdf(atoms, pair="Li-Ge")


def test_non_periodic_molecule():
    mol = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    res = rdf(mol, rmax=2.0, bins=20)
    assert res.r[np.argmax(res.g)] == pytest.approx(0.75, abs=0.05)


def test_rdf_error():
    r = np.linspace(0, 5, 101)
    g = np.exp(-((r - 2.5) ** 2))
    err = rdf_error(r, g, g)
    assert err["mean_abs"] == 0.0 and err["integral"] == 0.0
    err = rdf_error(r, g + 0.01, g)
    assert err["mean_abs"] == pytest.approx(0.01)
    assert err["integral"] == pytest.approx(0.05)
    with pytest.raises(ValueError):
        rdf_error(r, g[:-1], g)
