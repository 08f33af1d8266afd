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
           "--ensemble", "nvt", "--thermostat", "bussi", "--temperature", "400", "--timestep", "2",
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

    # the log and the run summary beside it give the drift and the speed
    from potlab.analysis.drift import drift_from_log

    drift = drift_from_log(out / "T400K_r0" / "md_log.csv")
    assert drift["n_atoms"] == 8 and drift["ns_per_day"] > 0

    bad = subprocess.run([*cmd[:-2], "--out", str(tmp_path / "x"), "--model", "ase.calculators.emt:Nope"],
                         check=False, capture_output=True, text=True)
    assert bad.returncode == 2 and "Nope" in bad.stderr
