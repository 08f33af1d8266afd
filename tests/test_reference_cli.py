"""``potlab label`` and ``potlab generate``: summary line, exit codes, files written."""

from __future__ import annotations

import ase.io
import numpy as np
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
