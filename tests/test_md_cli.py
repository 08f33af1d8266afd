"""`potlab md` end to end with an ASE calculator given as module:Class."""

import csv
import subprocess
import sys

import ase.io
from ase.build import bulk

from potlab.md.trajectory import LOG_COLUMNS


def test_cli_runs_emt_end_to_end(tmp_path):
    s = tmp_path / "Cu.cif"
    ase.io.write(s, bulk("Cu", "fcc", a=3.61, cubic=True))
    proto = tmp_path / "p.yaml"
    proto.write_text("monitors: {density_g_cm3: [2.0, 20.0]}\nformats: [extxyz]\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "potlab.cli", "md", "--model", "ase.calculators.emt:EMT",
           "--calc-kwargs", '{"asap_cutoff": false}', "--structure", str(s), "--supercell", "2", "1", "1",
           "--ensemble", "nvt", "--thermostat", "bussi", "--tdamp", "50", "--temperature", "400", "--timestep", "2",
           "--steps", "40", "--interval", "10", "--protocol", str(proto), "--out", str(out)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, env={"POTLAB_QUIET": "1",
                                                                   "OMP_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "T400K_r0" in done.stdout and "stable" in done.stdout and "ns/day" in done.stdout
    with open(out / "T400K_r0" / "md_log.csv") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == LOG_COLUMNS and [r[0] for r in rows[1:]] == ["0", "10", "20", "30", "40"]
    assert len(ase.io.read(out / "T400K_r0" / "trajectory.extxyz", ":")[0]) == 8
    assert not (out / "T400K_r0" / "trajectory.traj").exists()
    import json

    saved = json.loads((out / "T400K_r0" / "protocol.json").read_text())["settings"]
    assert saved["thermostat"] == "bussi" and saved["tdamp_fs"] == 50.0  # --tdamp reached it

    # the log and the run summary beside it give the drift and the speed
    from potlab.analysis.drift import drift_from_log

    drift = drift_from_log(out / "T400K_r0" / "md_log.csv")
    assert drift["n_atoms"] == 8 and drift["ns_per_day"] > 0

    bad = subprocess.run([*cmd[:-2], "--out", str(tmp_path / "x"), "--model", "ase.calculators.emt:Nope"],
                         check=False, capture_output=True, text=True)
    assert bad.returncode == 2 and "Nope" in bad.stderr


class _Done:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def _md(args, capsys):
    """``potlab md ARGS`` in this process (the command's own main: exit code and stderr)."""
    from potlab.cli import main

    capsys.readouterr()
    code = main(["md", *args])
    return _Done(code, capsys.readouterr().err)


def _one_line_error(done, *words):
    assert done.returncode == 2, done.stderr
    lines = [x for x in done.stderr.strip().splitlines() if not x.startswith("WARNING")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    s = tmp_path / "Cu.cif"
    ase.io.write(s, bulk("Cu", "fcc", a=3.61, cubic=True))
    junk = tmp_path / "cu.weird"
    junk.write_text("not a structure\n")
    base = ["--steps", "2", "--out", str(tmp_path / "o")]
    _one_line_error(_md(["--model", "ase.calculators.emt:EMT", "--structure", str(junk), *base], capsys),
                    "cu.weird", "cannot read")
    _one_line_error(_md(["--model", "ase.calculators.emt:EMT", "--calc-kwargs", '{"asap_cutof": 1}',
                         "--structure", str(s), *base], capsys), "asap_cutof", "EMT")
    _one_line_error(_md(["--model", "no-such-method", "--structure", str(s), *base], capsys),
                    "no-such-method")
    import torch
    from conftest import tiny_params

    from potlab.potential import Potential

    model = Potential("schnet", tiny_params("schnet"), [29], e0={29: -1.0}).save(tmp_path / "m.pt")
    _one_line_error(_md(["--model", str(model), "--calc-kwargs", '{"device": "cuda"}',
                         "--structure", str(s), *base], capsys), "m.pt", "device")
    _one_line_error(_md(["--model", "ase.calculators.emt:EMT", "--engine", "batched",
                         "--structure", str(s), *base], capsys), "batched", "potlab potential")
    del torch


def test_cli_batched_engine_and_rerun_check(tmp_path, capsys):
    import torch
    from conftest import tiny_params

    from potlab.potential import Potential

    torch.manual_seed(0)
    model = Potential("schnet", tiny_params("schnet"), [29], e0={29: -1.0}).save(tmp_path / "m.pt")
    s = tmp_path / "Cu.cif"
    ase.io.write(s, bulk("Cu", "fcc", a=3.61, cubic=True))
    out = tmp_path / "run"
    args = ["--model", str(model), "--structure", str(s), "--engine", "batched", "--ensemble", "nvt",
            "--thermostat", "langevin", "--temperature", "300", "600", "--repeats", "2", "--steps", "20",
            "--interval", "10", "--skin", "0.3", "--out", str(out)]
    done = _md(args, capsys)
    assert done.returncode == 0, done.stderr
    assert sorted(d.name for d in out.iterdir()) == ["T300K_r0", "T300K_r1", "T600K_r0", "T600K_r1"]
    for d in out.iterdir():
        assert (d / "result.json").exists() and (d / "protocol.json").exists()
    _one_line_error(_md([*args[:-2], "--timestep", "0.5", "--out", str(out)], capsys), "timestep_fs",
                    "--restart")
    assert _md([*args[:-2], "--timestep", "0.5", "--restart", "--out", str(out)], capsys).returncode == 0


def test_one_calculator_resolution_for_every_command(tmp_path):
    import pytest

    from potlab.calculators import resolve_calculator
    from potlab.errors import InputError

    calc = resolve_calculator("gfn1-xtb", {"accuracy": 2.0}, atoms=bulk("Cu", "fcc", a=3.61))
    assert type(calc).__name__ == "TBLite"
    with pytest.raises(InputError, match="'bogus'"):
        resolve_calculator("chgnet", {"bogus": 1})  # refused before any weights are loaded
    with pytest.raises(InputError, match="no such potential file"):
        resolve_calculator(str(tmp_path / "missing.pt"))
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match="text.pt"):
        resolve_calculator(str(tmp_path / "text.pt"))
    with pytest.raises(InputError, match="dtype"):
        resolve_calculator("ase.calculators.emt:EMT", dtype="float32")
