"""``potlab label`` and ``potlab generate``: summary line, exit codes, files written."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule

from potlab.cli import main
from potlab.data import read_frames


def test_potlab_label_prints_summary_and_caches(tmp_path, capsys):
    frames = [molecule("H2O"), molecule("CH4"), molecule("H2O")]
    frames[2].positions[1] = frames[2].positions[0] + [0.1, 0, 0]
    ase.io.write(tmp_path / "in.xyz", frames)
    out = tmp_path / "out.xyz"
    args = ["label", "--method", "gfn2-xtb", str(tmp_path / "in.xyz"), str(out), "--workers", "1",
            "--store", str(tmp_path / "s.db")]
    assert main(args) == 0
    assert "labelled=2 failed=1 cached=0" in capsys.readouterr().out
    labelled = read_frames(out)
    assert [f.get_chemical_formula() for f in labelled] == ["H2O", "CH4"]
    assert np.isfinite(labelled[0].info["REF_energy"])
    assert main(args) == 0
    assert "labelled=2 failed=1 cached=3" in capsys.readouterr().out
    ase.io.write(tmp_path / "bad.xyz", frames[2:])
    assert main(["label", str(tmp_path / "bad.xyz"), str(tmp_path / "b.xyz"), "--workers", "1"]) == 1
    assert "labelled=0 failed=1" in capsys.readouterr().out
    assert main(["label", str(tmp_path / "missing.xyz"), str(tmp_path / "c.xyz")]) == 2
    assert main(["label", "--method", "nope", str(tmp_path / "in.xyz"), str(out)]) == 2


def test_potlab_label_charge_and_calc_kwargs(tmp_path, capsys):
    ase.io.write(tmp_path / "oh.xyz", [molecule("OH")])
    e = {}
    for q in ("0", "-1"):
        out = tmp_path / f"oh{q}.xyz"
        assert main(["label", str(tmp_path / "oh.xyz"), str(out), "--workers", "1",
                     "--charge", q, "--calc-kwargs", '{"max_iterations": 300}']) == 0
        e[q] = read_frames(out)[0].info["REF_energy"]
    assert abs(e["0"] - e["-1"]) > 0.1
    capsys.readouterr()


def test_potlab_generate_writes_extxyz(tmp_path, capsys):
    ase.io.write(tmp_path / "w.xyz", [molecule("H2O")])
    assert main(["generate", "rattle", str(tmp_path / "w.xyz"), str(tmp_path / "r.xyz"),
                 "--copies", "4", "--distribution", "uniform"]) == 0
    assert len(ase.io.read(tmp_path / "r.xyz", ":")) == 4
    assert main(["generate", "liquid", str(tmp_path / "l.xyz"), "--smiles", "O", "--counts", "20",
                 "--density", "0.9"]) == 0
    assert len(ase.io.read(tmp_path / "l.xyz")) == 60
    assert main(["generate", "volume-scan", str(tmp_path / "l.xyz"), str(tmp_path / "v.xyz"),
                 "--scales", "0.95", "1.05"]) == 0
    assert len(ase.io.read(tmp_path / "v.xyz", ":")) == 2
    assert main(["generate", "volume-scan", str(tmp_path / "w.xyz"), str(tmp_path / "x.xyz"),
                 "--scales", "1.0"]) == 2  # not periodic
    assert "wrote 2 structures" in capsys.readouterr().out


def test_label_with_a_method_that_cannot_be_built_exits_2_and_stores_nothing(tmp_path, capsys):
    ase.io.write(tmp_path / "in.xyz", [molecule("H2O")])
    out = tmp_path / "out.xyz"
    for method in ("ase.calculators.emt:EMTT", "not_installed_pkg:Calc"):
        assert main(["label", "--method", method, str(tmp_path / "in.xyz"), str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and method in err[0] and "cannot import" in err[0]
    assert main(["label", "--method", "ase.calculators.emt:EMT", "--calc-kwargs", "[1]",
                 str(tmp_path / "in.xyz"), str(out)]) == 2
    assert "--calc-kwargs must be a JSON object" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "out.labels.db").exists()


def test_structure_commands_read_what_ase_reads(tmp_path, capsys):
    """CIF in: label, rattle and reference MD take any file ase.io.read reads."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    ase.io.write(tmp_path / "cu.cif", cu)
    assert main(["label", "--method", "ase.calculators.emt:EMT", str(tmp_path / "cu.cif"),
                 str(tmp_path / "l.xyz"), "--workers", "1"]) == 0
    (labelled,) = read_frames(tmp_path / "l.xyz")
    direct = cu.copy()
    direct.calc = EMT()
    assert labelled.info["REF_energy"] == pytest.approx(direct.get_potential_energy(), abs=1e-6)
    assert main(["generate", "rattle", str(tmp_path / "cu.cif"), str(tmp_path / "r.xyz"),
                 "--copies", "2"]) == 0
    assert [len(a) for a in ase.io.read(tmp_path / "r.xyz", ":")] == [4, 4]
    assert main(["generate", "md", str(tmp_path / "cu.cif"), str(tmp_path / "md.xyz"),
                 "--method", "ase.calculators.emt:EMT", "--steps", "4", "--every", "2",
                 "--ramp-fs", "2", "--timestep", "1"]) == 0
    assert len(read_frames(tmp_path / "md.xyz")) >= 2
    (tmp_path / "junk.cif").write_text("data_x\n_cell_length_a oops\n")
    capsys.readouterr()
    assert main(["generate", "rattle", str(tmp_path / "junk.cif"), str(tmp_path / "j.xyz")]) == 2
    assert "junk.cif" in capsys.readouterr().err


def test_generate_liquid_at_an_impossible_density_is_a_clear_error(tmp_path, capsys):
    assert main(["generate", "liquid", str(tmp_path / "l.xyz"), "--smiles", "O", "--counts", "30",
                 "--density", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too high to pack" in err[0] and "Traceback" not in err[0]
    assert main(["generate", "liquid", str(tmp_path / "l.xyz"), "--smiles", "O", "--counts", "3",
                 "--density", "-1"]) == 2
    assert "density" in capsys.readouterr().err
    assert not (tmp_path / "l.xyz").exists()
