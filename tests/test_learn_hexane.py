"""The bundled hexane study's quick preset, run as users run it
(``potlab learn hexane --preset quick --out DIR``) with the real reference, GFN2-xTB
through tblite: the loop's three iterations, every member's barrier, the transfer test on
butane and a SchNet trained on the selected data; checked against independent
expectations (tblite's own numbers, the bonds the reference run broke)."""

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest

from potlab.learn import learn_status
from potlab.reference import LabelStore

pytest.importorskip("tblite.ase", reason="the hexane study's reference is GFN2-xTB (tblite)")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    from potlab.cli import main

    out = tmp_path_factory.mktemp("hexane") / "run"
    assert main(["learn", "hexane", "--preset", "quick", "--out", str(out)]) == 0
    return out


def test_the_loop_ran_three_iterations_with_every_members_barrier(quick):
    st = learn_status(quick)
    assert st["finished"] == "max_iterations (3) reached"
    rows = st["iterations"]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert rows[0]["data_frames"] == 201  # 600 steps, every 3rd frame, and step 0
    for r in rows:
        errs = r["members_error_kcal_mol"]
        assert len(errs) == 3 and r["error_kcal_mol"] in errs  # the best member's is one of them
        assert r["members_spread_kcal_mol"] == pytest.approx(max(errs) - min(errs))
    for r in rows[:-1]:
        assert r["total"] == r["data_frames"] + r["labelled"]
        assert r["labelled"] + r["failed"] == 3 * r["selected"]  # each selected frame + 2 copies
    assert (quick / "report.md").exists() and (quick / "barrier_errors.png").exists()


def test_labels_are_gfn2_xtb_and_none_is_computed_twice(quick):
    from tblite.ase import TBLite

    frames = ase.io.read(quick / "iter_001" / "data.extxyz", ":")
    new = [f for f in frames if f.info.get("al_iteration") == 0]
    assert new
    # a frame the loop labelled (a single point, as here) and one of the initial MD, whose
    # SCF started from the previous step's wavefunction: the same energy, forces within
    # the SCF's convergence (3e-5 eV/A seen)
    for f, force_tol in ((new[0], 1e-6), (frames[5], 1e-4)):
        a = f.copy()
        a.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert a.get_potential_energy() == pytest.approx(f.info["REF_energy"], abs=1e-6)
        np.testing.assert_allclose(a.get_forces(), f.arrays["REF_forces"], atol=force_tol)
    hashes = [rec["structure_hash"] for _, rec in LabelStore(quick / "labels.db").records()]
    assert len(hashes) == len(set(hashes))


def test_the_reference_run_breaks_a_carbon_chain(quick):
    """Steered MD with GFN2-xTB pulls the terminal carbons apart until a C-C bond breaks:
    the last frame has a neighbouring carbon pair beyond 1.6 x its start length."""
    start = ase.io.read(quick / "setup" / "start.extxyz")
    last = ase.io.read(quick / "setup" / "reference_run" / "trajectory.extxyz", -1)
    d0 = [start.get_distance(k, k + 1) for k in range(5)]
    d1 = [last.get_distance(k, k + 1) for k in range(5)]
    assert all(1.4 < d < 1.65 for d in d0)  # C-C single bonds at the start
    assert max(b / a for a, b in zip(d0, d1)) > 1.6
    ref = learn_status(quick)["setup"]["reference_run"]
    log = (quick / "setup" / "reference_run" / "steered_log.csv").read_text().splitlines()
    col = log[0].split(",").index("work_eV")
    assert ref["value_eV"] == pytest.approx(max(float(r.split(",")[col]) for r in log[1:]))


def test_transfer_to_butane_and_schnet_on_the_selected_data(quick):
    st = learn_status(quick)
    (mol,) = st["molecules"]
    assert mol["name"] == "butane" and mol["formula"] == "C4H10"
    assert mol["reference_eV"] > 0 and mol["tracked_eV"] is not None
    (arch,) = st["architectures"]
    assert arch["model"] == "schnet" and arch["tracked_eV"] is not None
    last = st["iterations"][-1]
    split = json.loads(Path(quick / "assess" / "architectures" / "schnet" / "model" /
                            "split.json").read_text())
    assert len(split["train"]) + len(split["valid"]) == last["data_frames"]
    report = (quick / "report.md").read_text()
    assert "butane (C4H10)" in report and "schnet (schnet)" in report
