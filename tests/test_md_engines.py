"""What the one run loop promises for every engine (ase, lammps, batched): a run killed
mid-way (SIGKILL at a chosen force call, not after a sleep) resumes onto the uninterrupted
trajectory bit for bit; a rerun with a changed setting is refused naming the key; the
LAMMPS engine writes result.json and pressure and its monitors stop a planted failure.
Also NPT (MTK), the live RDF monitor and Nose-Hoover's production temperature."""

import json
import os
import runpy
import subprocess
import sys

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from potlab.md import parse_protocol, run_md
from potlab.md.monitors import RDFMonitor
from potlab.md.protocol import ProtocolError

_RUN = r"""
import os, signal, sys
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
import potlab
from potlab.md import parse_protocol, run_md
from potlab.md.batched import run_batched

def main(out, engine, thermostat, model, kill_at):
  kill_at = int(kill_at)
  thermostat, _, steered = thermostat.partition("+")  # "berendsen+steered": a pull too
  p = parse_protocol(dict(engine=engine, ensemble="nvt", thermostat=thermostat, steps=60,
                        timestep_fs=2.0, interval=2, block=3, temperatures_K=[500.0],
                        tdamp_fs=20.0, monitors=dict(enabled=False),
                        steered=dict(group_a=[0], group_b=[1], k_eV_A2=2.0,
                                     velocity_A_ps=10.0) if steered else None))
  pot = potlab.load(model)
  calls = [0]

  def count():
      calls[0] += 1
      if calls[0] == kill_at:
          os.kill(os.getpid(), signal.SIGKILL)

  class Counting(Calculator):
      implemented_properties = ["energy", "free_energy", "forces", "stress"]
      def __init__(self, base):
          super().__init__()
          self.base = base
      def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
          super().calculate(atoms, properties, system_changes)
          count()
          self.base.calculate(self.atoms, properties, system_changes)
          self.results = dict(self.base.results)

  cu = bulk("Cu", "fcc", a=3.61, cubic=True)
  if engine == "batched":
      forward = pot.forward
      def counted(*a, **k):
          count()
          return forward(*a, **k)
      pot.forward = counted
      run_batched([(cu, out + "/r0", 500.0, 1), (cu.repeat((2, 1, 1)), out + "/r1", 800.0, 2)], pot, p)
  else:
      run_md(cu, Counting(pot.calculator()), p, out + "/r0", seed=1)
"""
_RUN += '\nif __name__ == "__main__":\n    main(*sys.argv[1:6])\n'



@pytest.fixture(scope="module")
def schnet_file(tmp_path_factory):
    import torch
    from conftest import tiny_params

    from potlab.potential import Potential

    torch.manual_seed(0)
    pot = Potential("schnet", tiny_params("schnet"), [29], e0={29: -1.0}).to(torch.float64)
    return str(pot.save(tmp_path_factory.mktemp("model") / "cu.pt"))


def _child(script, out, engine, thermostat, model, kill_at):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POTLAB_QUIET": "1"}
    return subprocess.run([sys.executable, str(script), str(out), engine, thermostat, model,
                           str(kill_at)], env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("engine", "thermostat"), [("ase", "langevin"), ("lammps", "langevin"),
                                                    ("lammps", "nose-hoover"), ("lammps", "berendsen"),
                                                    ("batched", "bussi"),
                                                    ("batched", "nose-hoover"),
                                                    ("batched", "berendsen+steered")])
def test_kill_and_resume_equals_uninterrupted(tmp_path, schnet_file, engine, thermostat):
    killed, ref = tmp_path / "killed", tmp_path / "ref"
    script = tmp_path / "md_child.py"
    script.write_text(_RUN)
    done = _child(script, killed, engine, thermostat, schnet_file, kill_at=37)
    assert done.returncode == -9, done.stderr  # killed by its own SIGKILL at force call 37
    part = ase.io.read(killed / "r0" / "trajectory.traj", ":")
    assert 0 < part[-1].info["step"] < 60, "the kill should land mid-run"
    assert not (killed / "r0" / "result.json").exists()
    done = _child(script, killed, engine, thermostat, schnet_file, kill_at=0)  # resume
    assert done.returncode == 0, done.stderr
    runpy.run_path(str(script))["main"](str(ref), engine, thermostat, schnet_file, 0)  # reference
    dirs = ["r0", "r1"] if engine == "batched" else ["r0"]
    for r in dirs:
        a = ase.io.read(killed / r / "trajectory.traj", ":")
        b = ase.io.read(ref / r / "trajectory.traj", ":")
        assert [f.info["step"] for f in a] == [f.info["step"] for f in b] == list(range(0, 61, 2))
        # LAMMPS re-initialises its Nose-Hoover chain from the restart file: the last bit
        # may differ (1e-15 A after 30 steps); everything else resumes bit for bit
        atol = 1e-12 if thermostat == "nose-hoover" else 0.0
        for fa, fb in zip(a, b):
            np.testing.assert_allclose(fa.positions, fb.positions, rtol=0, atol=atol)
            np.testing.assert_allclose(fa.get_momenta(), fb.get_momenta(), rtol=0, atol=atol)
        rows = (killed / r / "md_log.csv").read_text().splitlines()
        assert [int(x.split(",")[0]) for x in rows[1:]] == list(range(0, 61, 2))
        if "steered" in thermostat:  # the pull's log resumes row for row, its work with it
            steer = (killed / r / "steered_log.csv").read_text().splitlines()
            assert steer == (ref / r / "steered_log.csv").read_text().splitlines()
            assert [int(x.split(",")[0]) for x in steer[1:]] == list(range(61))
        res = json.loads((killed / r / "result.json").read_text())
        assert res["steps"] == 60 and res["extra"]["engine"] == engine


def _cu_proto(**kw):
    base = {"ensemble": "nvt", "thermostat": "langevin", "steps": 20, "timestep_fs": 2.0,
            "interval": 10, "temperatures_K": [300.0], "monitors": {"density_g_cm3": [2.0, 20.0]}}
    base.update(kw)
    return parse_protocol(base)


def test_rerun_with_changed_timestep_is_refused(tmp_path):
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    first = run_md(cu, EMT(), _cu_proto(), tmp_path)
    again = run_md(cu, EMT(), _cu_proto(), tmp_path)  # same settings: the finished run
    assert again.steps == first.steps == 20
    with pytest.raises(ProtocolError, match=r"timestep_fs"):
        run_md(cu, EMT(), _cu_proto(timestep_fs=1.0), tmp_path)
    with pytest.raises(ProtocolError, match=r"steps"):
        run_md(cu, EMT(), _cu_proto(steps=40), tmp_path)
    with pytest.raises(ProtocolError, match=r"structure"):
        run_md(cu.repeat((2, 1, 1)), EMT(), _cu_proto(), tmp_path)
    with pytest.raises(ProtocolError, match=r"temperature_K"):
        run_md(cu, EMT(), _cu_proto(), tmp_path, temperature_K=400.0)
    res = run_md(cu, EMT(), _cu_proto(timestep_fs=1.0), tmp_path, resume=False)  # --restart
    assert res.time_ps == pytest.approx(0.02)


def test_a_run_saved_before_a_setting_existed_resumes_at_its_default(tmp_path):
    """protocol.json written by a potlab without ``monitors.bond_stretch_factor`` stands for
    its default (None): the finished run is read back, not refused; a value other than the
    default is refused naming the key, and a key since removed counts as a difference."""
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    first = run_md(cu, EMT(), _cu_proto(), tmp_path)
    saved = json.loads((tmp_path / "protocol.json").read_text())
    del saved["settings"]["monitors"]["bond_stretch_factor"]
    (tmp_path / "protocol.json").write_text(json.dumps(saved))
    again = run_md(cu, EMT(), _cu_proto(), tmp_path)
    assert again.steps == first.steps == 20
    with pytest.raises(ProtocolError, match=r"monitors\.bond_stretch_factor"):
        run_md(cu, EMT(), _cu_proto(monitors={"density_g_cm3": [2.0, 20.0],
                                              "bond_stretch_factor": 2.0}), tmp_path)
    saved["settings"]["thermostat_chain"] = 3  # a setting this potlab does not know
    (tmp_path / "protocol.json").write_text(json.dumps(saved))
    with pytest.raises(ProtocolError, match=r"thermostat_chain"):
        run_md(cu, EMT(), _cu_proto(), tmp_path)


def test_old_checkpoint_is_refused(tmp_path):
    import pickle

    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    run_md(cu, EMT(), _cu_proto(), tmp_path)
    (tmp_path / "result.json").unlink()
    with open(tmp_path / "checkpoint.pkl", "wb") as fh:  # what potlab <= 0.1 pickled
        pickle.dump({"step": 10, "dyn_state": {"state": {"dyn._eta": 0.0}}}, fh)
    with pytest.raises(ValueError, match="older potlab"):
        run_md(cu, EMT(), _cu_proto(), tmp_path)


def test_lammps_engine_writes_results_pressure_and_resume_state(tmp_path):
    res = run_md(bulk("Cu", "fcc", a=3.61, cubic=True), EMT(), _cu_proto(engine="lammps"), tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["steps"] == 20 and saved["extra"]["engine"] == "lammps"
    assert saved["stability"]["stable"] and res.final_temperature_K > 0
    import csv

    with open(tmp_path / "md_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["0", "10", "20"]
    # pressure from the calculator's virial plus the kinetic term, as the ASE path logs it
    frame = ase.io.read(tmp_path / "trajectory.extxyz", 0)
    a = frame.copy()
    a.calc = EMT()
    from ase import units

    p_ref = -np.mean(a.get_stress(include_ideal_gas=True)[:3]) / units.GPa
    assert float(rows[0]["pressure_GPa"]) == pytest.approx(p_ref, abs=1e-9)
    assert any(tmp_path.glob("lammps_*.restart"))


@pytest.mark.parametrize("engine", ["ase", "lammps", "batched"])
def test_berendsen_relaxes_free_atoms_at_the_analytic_rate(tmp_path, schnet_file, engine):
    """Eight copper atoms 10 A apart (beyond the 4 A cutoff: no forces), 600 K towards 300 K:
    Berendsen's scaling sqrt(1 + dt/tau (T0/T - 1)) changes the temperature by exactly
    dt/tau (T0 - T) per step, so T_k = T0 + (T_0 - T0) (1 - dt/tau)^k at every logged step,
    the same for the three engines."""
    import csv

    import potlab
    from potlab.md.batched import run_batched

    atoms = bulk("Cu", "sc", a=10.0).repeat((2, 2, 2))
    p = parse_protocol({"engine": engine, "ensemble": "nvt", "thermostat": "berendsen",
                        "tdamp_fs": 40.0, "timestep_fs": 2.0, "steps": 40, "interval": 4,
                        "temperatures_K": [300.0], "initial_temperature_K": 600.0,
                        "monitors": {"enabled": False}, "formats": ["extxyz"]})
    pot = potlab.load(schnet_file)
    if engine == "batched":
        run_batched([(atoms, tmp_path, 300.0, 3)], pot, p)
    else:
        run_md(atoms, pot.calculator(), p, tmp_path, seed=3)
    with open(tmp_path / "md_log.csv") as fh:
        rows = list(csv.DictReader(fh))
    steps = np.array([int(r["step"]) for r in rows])
    temps = np.array([float(r["temperature_K"]) for r in rows])
    assert list(steps) == list(range(0, 41, 4))
    assert temps[0] == pytest.approx(600.0, rel=1e-9)
    target = 300.0
    if engine == "lammps":  # LAMMPS's metal-unit Boltzmann constant: its 300 K in ASE's units
        from ase import units

        target *= 8.617343e-5 / units.kB
    expected = target + (temps[0] - target) * (1 - 2.0 / 40.0) ** steps
    np.testing.assert_allclose(temps, expected, rtol=1e-9 if engine != "lammps" else 1e-7)
    assert float(rows[-1]["epot_eV"]) == pytest.approx(float(rows[0]["epot_eV"]), abs=1e-12)


def _fused_copper():
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    a.positions[1] = a.positions[0] + [0.9, 0.0, 0.0]  # two atoms 0.9 A apart
    return a


@pytest.mark.parametrize("engine", ["ase", "lammps"])
def test_monitors_stop_a_planted_failure(tmp_path, engine):
    """Two copper atoms 0.9 A apart: EMT throws them apart; the run must stop at the first
    recorded frame with t_stab and a reason, and the same for both engines."""
    p = _cu_proto(engine=engine, ensemble="nve", steps=200, interval=5)
    res = run_md(_fused_copper(), EMT(), p, tmp_path)
    assert not res.stability.stable and res.steps == 5
    assert res.stability.t_stab_ps == pytest.approx(0.01)
    assert res.stability.monitor in ("bond", "fusion", "temperature")
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["stability"]["reason"] == res.stability.reason
    assert ase.io.read(tmp_path / "trajectory.traj", -1).info["step"] == 5


def test_npt_mtk_relaxes_an_expanded_cell_towards_equilibrium(tmp_path):
    """Isotropic MTK at 0 GPa: copper started 4 % expanded (under tension) contracts; the
    density rises towards EMT's equilibrium and the cell stays cubic."""
    cu = bulk("Cu", "fcc", a=3.61 * 1.04, cubic=True).repeat((2, 2, 2))
    p = _cu_proto(ensemble="npt", barostat="isotropic", steps=300, interval=10, pressure_GPa=0.0,
                  tdamp_fs=50.0, pdamp_fs=200.0, timestep_fs=2.0)
    run_md(cu, EMT(), p, tmp_path)
    frames = ase.io.read(tmp_path / "trajectory.traj", ":")
    v = np.array([f.get_volume() for f in frames])
    assert v.min() < 0.95 * v[0]  # contracted by more than 5 % at some point
    eq = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    eq.calc = EMT()
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    BFGS(FrechetCellFilter(eq), logfile=None).run(fmax=1e-3)
    assert np.mean(v[len(v) // 2:]) == pytest.approx(eq.get_volume(), rel=0.04)
    c = frames[-1].cell.array
    np.testing.assert_allclose(c / c[0, 0], np.eye(3), atol=1e-9)  # isotropic: stays cubic


def test_nose_hoover_production_temperature(tmp_path):
    p = _cu_proto(thermostat="nose-hoover", steps=1500, interval=5, tdamp_fs=20.0,
                  initial_temperature_K=200.0, timestep_fs=2.0)
    run_md(bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2)), EMT(), p, tmp_path,
           temperature_K=600.0)
    import csv

    with open(tmp_path / "md_log.csv") as fh:
        T = np.array([float(r["temperature_K"]) for r in csv.DictReader(fh)])
    assert T[0] == pytest.approx(200.0)
    assert np.mean(T[len(T) // 2:]) == pytest.approx(600.0, rel=0.1)


def test_rdf_monitor_stops_a_melting_run(tmp_path):
    """A live RDF monitor against the RDF of a 300 K copper run: another 300 K run (its own
    seed) stays below the threshold, the same crystal thermostatted at 3000 K melts and is
    stopped at the end of its first window."""
    cu = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    p = _cu_proto(steps=300, friction_per_fs=0.05, monitors={"enabled": False})
    run_md(cu, EMT(), p, tmp_path / "ref", temperature_K=300.0, seed=5)
    ref = ase.io.read(tmp_path / "ref" / "trajectory.traj", "10:")

    def monitored(T):
        mon = RDFMonitor(reference_frames=ref, window_ps=0.1, threshold=1.5)
        return run_md(cu, EMT(), p, tmp_path / f"T{T}", temperature_K=T, seed=1, monitors=[mon]), mon

    cold, mon = monitored(300.0)
    assert cold.stability.stable and 0 < mon.last_error < 1.5
    hot, _ = monitored(3000.0)
    assert not hot.stability.stable and hot.stability.monitor == "rdf"
    assert "RDF error" in hot.stability.reason
    assert hot.stability.t_stab_ps == pytest.approx(0.12)  # first window: frames at 20..120 fs
