"""``potlab learn compare``: runs side by side from their records (seed 002 Fig. 5), on
records written here with known errors, so the summary's answers are known."""

from __future__ import annotations

import json

import pytest

from potlab.cli import main
from potlab.learn.compare import run_summary
from potlab.learn.record import Record
from potlab.learn.selectors import KCAL_MOL_IN_EV


def _run(path, errors_kcal, members=None, tol=1.0, consecutive=3, added=10):
    """A run directory whose record has one measured iteration per error."""
    rec = Record(path)
    rec.append(-1, "initial_data", {"n_frames": 100})
    total = 100
    for i, e in enumerate(errors_kcal):
        rec.append(i, "train", {"best_member": 0})
        rec.append(i, "measure", {"tracked_eV": 1.0 + e * KCAL_MOL_IN_EV,
                                  "error_eV": e * KCAL_MOL_IN_EV, "error_kcal_mol": e,
                                  "test_forces_mae_mev_per_a": 50.0})
        if members:
            rec.append(i, "members", {"error_kcal_mol": members[i], "spread_kcal_mol": 0.0})
        total += added
        rec.append(i, "merge", {"added": added, "total": total})
    (path / "config.json").write_text(json.dumps(
        {"convergence": {"tolerance_kcal_mol": tol, "consecutive": consecutive}}))
    return path


def test_summary_finds_the_first_iteration_meeting_the_target(tmp_path):
    # within 1 kcal/mol at iterations 1, 2 | 4, 5, 6: three in a row first at iteration 6
    d = _run(tmp_path / "a", [5.0, 0.5, -0.2, 2.0, 0.3, -0.4, 0.9, 3.0])
    s = run_summary(d)
    assert s["target_met_at_iteration"] == 6
    assert s["longest_within_tolerance"] == 3
    assert s["best"]["iteration"] == 2 and s["best"]["abs_error_kcal_mol"] == pytest.approx(0.2)
    assert s["last"]["error_kcal_mol"] == pytest.approx(3.0)
    assert [r["labels"] for r in s["rows"]] == [100 + 10 * i for i in range(8)]


def test_target_not_met_when_the_error_oscillates(tmp_path):
    s = run_summary(_run(tmp_path / "b", [0.5, 0.5, 1.5, 0.5, 0.5, 1.2]))
    assert s["target_met_at_iteration"] is None and s["longest_within_tolerance"] == 2


def test_compare_through_the_cli(tmp_path, capsys):
    a = _run(tmp_path / "a", [10.0, -2.0], members=[[10.0, 12.0], [-2.0, 4.0]])
    b = _run(tmp_path / "b", [-30.0, 0.5, 0.25, 0.75], added=20)
    assert main(["learn", "compare", f"inherited={a}", f"fresh={b}", "--out",
                 str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| inherited | 2 | 110 | -2.00 | 2.00 (1) | 0 |" in md
    assert "| fresh | 4 | 160 | +0.75 | 0.25 (2) | 3 | 3 in a row below 1.0 kcal/mol: yes, at iteration 3 |" in md
    assert "| 1 | 110 | -2.00 | -2.0 / +4.0 | - | - | 120 | +0.50 | - | - | - |" in md
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 0
    assert main(["learn", "compare", str(a), str(a)]) == 2
    assert "two runs named" in capsys.readouterr().err


def test_compare_names_a_directory_without_a_record(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["learn", "compare", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0] and "record.jsonl" in err[0]


def test_pull_peak_reads_the_rupture_force_from_a_steered_log(tmp_path):
    """A pull whose spring force rises linearly to 3 eV/A at anchor 2 A and then drops
    to -0.5 eV/A: rupture force 3, and the work (the integral of force over anchor) peaks
    where the force changes sign after the drop."""
    import numpy as np

    from potlab.learn.report import pull_peak

    anchor = np.linspace(1.0, 3.0, 201)
    force = np.where(anchor <= 2.0, 3.0 * (anchor - 1.0), -0.5)
    work = np.concatenate([[0.0], np.cumsum(0.5 * (force[1:] + force[:-1]) * np.diff(anchor))])
    rows = ["step,time_ps,anchor_A,spring_length_A,spring_force_eV_A,work_eV"]
    rows += [f"{k},{k * 1e-3},{a},{a},{f},{w}" for k, (a, f, w) in enumerate(zip(anchor, force, work))]
    (tmp_path / "steered_log.csv").write_text("\n".join(rows) + "\n")
    pk = pull_peak(tmp_path)
    assert pk["force"] == pytest.approx(3.0)
    assert pk["anchor"] == pytest.approx(2.0, abs=0.011)  # the last step before the drop
    assert pk["work"] == pytest.approx(1.5, abs=0.02)  # triangle: 1/2 x 1 A x 3 eV/A
    assert pull_peak(tmp_path / "nothing") is None
