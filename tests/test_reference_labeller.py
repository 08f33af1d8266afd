"""potlab.reference labellers: real tblite calls, failure records, the label store cache."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.emt import EMT

from potlab.data import read_frames
from potlab.reference import Labeller, LabelStore, Method, get_method, structure_hash
from potlab.reference.methods import MethodUnavailable


def _direct_tblite(method: str, atoms: Atoms, charge: float = 0.0):
    from tblite.interface import Calculator

    calc = Calculator(method, atoms.numbers, atoms.positions / units.Bohr, charge=charge)
    calc.set("verbosity", 0)
    res = calc.singlepoint()
    return res.get("energy") * units.Hartree, -res.get("gradient") * units.Hartree / units.Bohr


@pytest.mark.parametrize(("name", "tb"), [("gfn2-xtb", "GFN2-xTB"), ("gfn1-xtb", "GFN1-xTB")])
def test_xtb_equals_direct_tblite_call(name, tb):
    water = molecule("H2O")
    hydroxide = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]], info={"charge": -1})
    res = Labeller(name, workers=1).label([water, hydroxide])
    assert not res.failures and len(res.labelled) == 2
    for atoms, out, charge in zip([water, hydroxide], res.labelled, [0.0, -1.0]):
        energy, forces = _direct_tblite(tb, atoms, charge)
        assert out.info["REF_energy"] == pytest.approx(energy, rel=1e-9, abs=1e-8)
        np.testing.assert_allclose(out.arrays["REF_forces"], forces, atol=1e-8)
        assert "REF_stress" not in out.info
    neutral_oh = Labeller(name, workers=1).label([Atoms(hydroxide.symbols, hydroxide.positions)])
    assert abs(neutral_oh.labelled[0].info["REF_energy"] - res.labelled[1].info["REF_energy"]) > 0.1


def test_failures_are_recorded_and_the_batch_goes_on(tmp_path):
    too_close = molecule("H2O")
    too_close.positions[1] = too_close.positions[0] + [0.2, 0.0, 0.0]
    stretched = molecule("H2O")
    stretched.positions[1] *= 3.0  # a radical pair: no SCF convergence within 12 cycles
    batch = [molecule("H2O"), too_close, molecule("C6H6"), stretched]
    lab = Labeller("gfn2-xtb", {"max_iterations": 12}, store=tmp_path / "l.db", workers=1)
    res = lab.label(batch)
    assert [a.get_chemical_formula() for a in res.labelled] == ["H2O", "C6H6"]
    assert [f.index for f in res.failures] == [1, 3]
    assert res.failures[0].error_type == "AtomsTooClose" and "0.200" in res.failures[0].reason
    assert "SCF not converged" in res.failures[1].reason
    assert res.failures[1].structure is stretched
    assert res.summary() == "labelled=2 failed=2 cached=0"
    again = lab.label(batch)  # failures are stored and not retried
    assert again.summary() == "labelled=2 failed=2 cached=4" and again.computed == 0
    lab.retry_failures = True  # asked: the two stored failures are computed again
    retried = lab.label(batch)
    assert retried.computed == 2 and retried.cached == 2 and len(lab.store) == 4


class CountingEMT(EMT):
    """EMT that counts its calculations (a real calculator)."""

    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        super().calculate(*args, **kwargs)


def _counting_method(settings=None):
    method = Method(f"{__name__}:CountingEMT", settings or {})  # importable: check() builds it
    object.__setattr__(method, "calculator", lambda atoms: CountingEMT())
    return method


def test_cache_returns_stored_labels_without_calling(tmp_path, rng):
    from ase.build import bulk

    cells = []
    for _ in range(4):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        cells.append(a)
    store = LabelStore(tmp_path / "cu.db")
    CountingEMT.calls = 0
    first = Labeller(_counting_method(), store=store, workers=1).label(cells + [cells[0].copy()])
    assert CountingEMT.calls == 4 and first.computed == 4 and len(store) == 4
    assert first.labelled[4].info["REF_energy"] == first.labelled[0].info["REF_energy"]
    second = Labeller(_counting_method(), store=store, workers=1).label(cells)
    assert CountingEMT.calls == 4 and second.cached == 4 and second.computed == 0
    for a, b in zip(first.labelled, second.labelled):
        assert a.info["REF_energy"] == b.info["REF_energy"]
        np.testing.assert_array_equal(a.arrays["REF_forces"], b.arrays["REF_forces"])
        np.testing.assert_array_equal(a.info["REF_stress"], b.info["REF_stress"])
    moved = cells[0].copy()
    moved.positions[0, 0] += 1e-3  # another structure: another hash, one more call
    other = Labeller(_counting_method({"asap_cutoff": False}), store=store, workers=1)
    other.label([cells[0], moved])  # other settings: a separate cache entry
    assert CountingEMT.calls == 6 and len(store) == 6
    direct = cells[1].copy()
    direct.calc = EMT()
    assert second.labelled[1].info["REF_energy"] == pytest.approx(direct.get_potential_energy())
    np.testing.assert_allclose(second.labelled[1].info["REF_stress"], direct.get_stress(), atol=1e-12)


def test_import_path_method_and_export(tmp_path, rng):
    from ase.build import bulk

    cells = [bulk("Al", "fcc", a=4.05).repeat(2) for _ in range(3)]
    for a in cells:
        a.rattle(0.05, rng=rng)
    lab = Labeller("ase.calculators.emt:EMT", store=tmp_path / "al.db", workers=2)
    res = lab.label(cells)
    assert len(res.labelled) == 3 and res.labelled[0].info["ref_method"] == "ase.calculators.emt:EMT"
    out = lab.store.export_extxyz(tmp_path / "al.xyz")
    frames = read_frames(out)
    assert len(frames) == 3
    energies = sorted(f.info["REF_energy"] for f in frames)
    assert energies == pytest.approx(sorted(a.info["REF_energy"] for a in res.labelled), abs=1e-7)
    assert frames[0].arrays["REF_forces"].shape == (len(cells[0]), 3)
    with pytest.raises(MethodUnavailable, match="unknown reference method"):
        get_method("b3lyp")


def test_a_method_that_cannot_be_built_is_bad_input_and_never_cached(tmp_path, monkeypatch):
    """A misspelled module:Class or a missing package is not a failure of every structure:
    label() raises before any call and stores nothing; failure records of that kind left by
    an older potlab are recomputed once the method can be built."""
    from ase.build import bulk

    from potlab.reference.labeller import label_one

    cell = bulk("Cu", "fcc", a=3.6)
    store = LabelStore(tmp_path / "s.db")
    for name in ("ase.calculators.emt:NoSuchCalc", "no_such_package:Calc"):
        with pytest.raises(MethodUnavailable, match="cannot import"):
            Labeller(name, store=store, workers=1).label([cell])
    with pytest.raises(MethodUnavailable, match="cannot be built with settings"):
        Labeller("ase.calculators.mixing:SumCalculator", {"bogus": 1}, store=store,
                 workers=1).label([cell])
    assert len(store) == 0
    # an older potlab stored "cannot import" as this structure's failure
    method = Method("late_calc_module:Calc")
    old = label_one((method, cell, 0.5))
    assert not old["ok"] and old["error_type"] == "MethodUnavailable"
    store.put(cell, {**old, "error_type": "ValueError",
                     "reason": "method 'late_calc_module:Calc': cannot import 'Calc'"})
    (tmp_path / "late_calc_module.py").write_text("from ase.calculators.emt import EMT as Calc\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the package is installed now
    res = Labeller(method, store=store, workers=1).label([cell])
    assert res.cached == 0 and len(res.labelled) == 1 and not res.failures
    direct = cell.copy()
    direct.calc = EMT()
    assert res.labelled[0].info["REF_energy"] == pytest.approx(direct.get_potential_energy())
    assert Labeller(method, store=store, workers=1).label([cell]).cached == 1  # now it is cached


def test_structure_hash_covers_charge_spin_and_cell():
    w = molecule("H2O")
    assert structure_hash(w) == structure_hash(w.copy())
    assert structure_hash(w, charge=1) != structure_hash(w)
    assert structure_hash(w, spin=2) != structure_hash(w)
    shifted = w.copy()
    shifted.positions += 1e-8  # below the rounding: same structure
    assert structure_hash(shifted) == structure_hash(w)
    boxed = w.copy()
    boxed.cell = [10, 10, 10]
    assert structure_hash(boxed) != structure_hash(w)


def test_chgnet_labels_equal_a_direct_call_and_keep_quiet(capfd, rng):
    """CHGNet (weights inside the chgnet wheel): the labeller's numbers are those of
    CHGNet's own ASE calculator, and CHGNet's prints and warnings stay off the terminal."""
    from ase.build import bulk
    from chgnet.model import CHGNet, CHGNetCalculator

    from potlab.reference.methods import _chgnet

    si = bulk("Si", "diamond", a=5.43).repeat((2, 1, 1))
    si.rattle(0.05, rng=rng)
    _chgnet.cache_clear()  # build it here, where its output would show
    capfd.readouterr()
    res = Labeller("chgnet", workers=1).label([si])
    seen = capfd.readouterr()
    assert "CHGNet" not in seen.out + seen.err and "Warning" not in seen.err
    assert not res.failures
    direct = si.copy()
    direct.calc = CHGNetCalculator(CHGNet.load(model_name="0.3.0", verbose=False,
                                               use_device="cpu"), use_device="cpu")
    out = res.labelled[0]
    assert out.info["REF_energy"] == pytest.approx(direct.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(out.arrays["REF_forces"], direct.get_forces(), atol=1e-6)
    np.testing.assert_allclose(out.info["REF_stress"], direct.get_stress(), atol=1e-7)


def test_sevennet_labels_equal_a_direct_call(li3ps4_frames):
    """SevenNet-0 (weights inside the sevenn wheel) as a teacher: the labeller's numbers
    are those of SevenNet's own ASE calculator."""
    from potlab.models.e3nn_import import import_mace_and_e3nn

    import_mace_and_e3nn()  # sevenn imports e3nn: import it the way potlab does
    from sevenn.calculator import SevenNetCalculator

    atoms = li3ps4_frames[0].copy()
    atoms.info.clear()
    res = Labeller("sevennet", workers=1).label([atoms])
    assert not res.failures
    direct = atoms.copy()
    direct.calc = SevenNetCalculator("7net-0", device="cpu")
    out = res.labelled[0]
    assert out.info["REF_energy"] == pytest.approx(direct.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(out.arrays["REF_forces"], direct.get_forces(), atol=1e-6)


def test_gfn1_periodic_cell_equals_direct_tblite_call():
    from ase.build import bulk
    from tblite.interface import Calculator

    lih = bulk("LiH", "rocksalt", a=4.0)
    lih.positions[0] += [0.05, 0.0, 0.0]
    res = Labeller("gfn1-xtb", workers=1).label([lih])
    assert not res.failures
    calc = Calculator("GFN1-xTB", lih.numbers, lih.positions / units.Bohr,
                      lattice=lih.cell.array / units.Bohr, periodic=lih.pbc)
    calc.set("verbosity", 0)
    direct = calc.singlepoint()
    out = res.labelled[0]
    assert out.info["REF_energy"] == pytest.approx(direct.get("energy") * units.Hartree, abs=1e-7)
    np.testing.assert_allclose(out.arrays["REF_forces"],
                               -direct.get("gradient") * units.Hartree / units.Bohr, atol=1e-7)
    assert out.info["REF_stress"].shape == (6,) and np.isfinite(out.info["REF_stress"]).all()
    assert Labeller("gfn2-xtb", workers=1).label([lih]).failures  # GFN2: molecules only
