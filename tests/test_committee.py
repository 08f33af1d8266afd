"""Committees: the grouped one-pass evaluation equals every member evaluated alone (for
every registered architecture), the spread is the members' spread, and a committee
saves to one file that `potlab.load` gives back."""

import numpy as np
import pytest
import torch
from conftest import tiny_params

import potlab
from potlab.models import available
from potlab.potential import Committee, Potential, committee_statistics

ARCHS = sorted(available())


def members(name, elements, n=3):
    out = []
    for s in range(n):
        torch.manual_seed(100 + s)
        e0 = {z: -float(z) * (1 + 0.1 * s) for z in elements}
        out.append(Potential(name, tiny_params(name), elements, e0=e0, shift=0.05 * s, scale=1.0 + s).double().eval())
    return out


@pytest.mark.parametrize("name", ARCHS)
def test_committee_equals_members(name, li3ps4_frames):
    from ase.build import molecule

    mol = molecule("SH2")
    mol.rattle(0.05, seed=1)
    frames = [li3ps4_frames[0], mol, li3ps4_frames[3]]
    elements = sorted({int(z) for a in frames for z in a.numbers})
    pots = members(name, elements)
    com = Committee(pots, group=True)
    out = com(com.graph(frames), forces=True, stress=True)
    assert out["energy"].shape == (3, 3) and out["forces"].shape == (3, sum(map(len, frames)), 3)
    for m, p in enumerate(pots):
        one = p(p.graph(frames), forces=True, stress=True)
        np.testing.assert_allclose(out["energy"][m].detach(), one["energy"].detach(), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(out["forces"][m].detach(), one["forces"].detach(), atol=1e-9)
        np.testing.assert_allclose(out["stress"][m].detach(), one["stress"].detach(), atol=1e-11)
    # members differ, so the committee has a spread
    assert out["forces"].std(dim=0).max() > 1e-6
    # the member-by-member path gives the same numbers as the grouped one
    loop = Committee(pots, group=False)
    assert not loop.grouped
    ref = loop(loop.graph(frames), forces=True)
    np.testing.assert_allclose(ref["forces"].detach(), out["forces"].detach(), atol=1e-9)
    # "auto" keeps the path that timed faster (below, with fake clocks); the numbers do not change
    auto = Committee(pots)
    res = auto(auto.graph(frames), forces=True)
    np.testing.assert_allclose(res["forces"].detach(), out["forces"].detach(), atol=1e-9)


def test_own_architectures_are_grouped():
    """Architectures built from linear, embedding and layer-norm layers run grouped."""
    for name in ("schnet", "painn", "dimenetpp", "ani", "so3krates"):
        assert Committee(members(name, [1, 8], n=2), group=True).grouped, name


def test_calculator_mean_and_spread(tmp_path, li3ps4_frames):
    atoms = li3ps4_frames[1].copy()
    pots = members("schnet", sorted(set(atoms.numbers)), n=4)
    path = Committee(pots).save(tmp_path / "committee.pt")
    com = potlab.load(path)
    assert isinstance(com, Committee) and com.size == 4
    atoms.calc = com.calculator()
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    r = atoms.calc.results
    singles = [p.calculator() for p in pots]
    es = np.array([c.get_potential_energy(atoms) for c in singles])
    fs = np.array([c.get_forces(atoms) for c in singles])
    assert e == pytest.approx(es.mean(), abs=1e-9)
    np.testing.assert_allclose(f, fs.mean(axis=0), atol=1e-9)
    assert r["energy_std"] == pytest.approx(es.std(), abs=1e-9)
    var = ((fs - fs.mean(axis=0)) ** 2).sum(axis=-1).mean(axis=0)
    np.testing.assert_allclose(r["forces_var"], var, atol=1e-12)
    assert r["max_forces_var"] == pytest.approx(var.max())
    assert atoms.get_stress().shape == (6,)


def test_statistics_of_identical_members_have_no_spread():
    f = np.random.default_rng(0).normal(size=(1, 5, 3)).repeat(3, axis=0)
    s = committee_statistics(np.array([1.0, 1.0, 1.0]), f)
    assert s["energy_std"] == 0 and s["max_forces_var"] < 1e-28
    np.testing.assert_allclose(s["forces"], f[0], rtol=1e-15)


def test_members_must_match():
    a = members("schnet", [1, 8], n=1)[0]
    b = members("painn", [1, 8], n=1)[0]
    with pytest.raises(ValueError, match="member 1"):
        Committee([a, b])


@pytest.mark.parametrize("faster", ["grouped", "members"])
def test_auto_keeps_the_path_that_timed_faster(monkeypatch, li3ps4_frames, faster):
    """A fake clock makes one path take 1 s and the other 0.1 s per call: "auto" must keep
    the faster one, and say why when it is member by member."""
    from types import SimpleNamespace

    from potlab.potential import committee as committee_module

    frames = li3ps4_frames[:1]
    com = Committee(members("schnet", sorted(set(frames[0].numbers)), n=2))
    now = [0.0]

    def clock():  # read twice per timed call: before (any state) and after (the path ran)
        grouped_now = com.grouped_model is not None
        now[0] += (0.1 if (faster == "grouped") == grouped_now else 1.0)
        return now[0]

    monkeypatch.setattr(committee_module, "time", SimpleNamespace(perf_counter=clock))
    com(com.graph(frames), forces=True)
    assert com.grouped is (faster == "grouped")
    assert (com.why_not_grouped is None) is (faster == "grouped")
    if faster == "members":
        assert com.why_not_grouped.startswith("auto: member by member took")
