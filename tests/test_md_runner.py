"""The MD runner on small EMT copper cells: NVE conserves energy, Langevin and Bussi reach
their temperature, the ramp protocol reaches T, outputs carry step and time, protocols
reject unknown keys. (A SIGKILLed run resuming onto the same trajectory, for every engine,
is in test_md_engines.py.)"""

import csv
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from potlab.md.protocol import ProtocolError, load_protocol, parse_protocol, run_dir_name
from potlab.md.runner import run_md, run_protocol
from potlab.md.trajectory import LOG_COLUMNS


def copper(n=(2, 1, 1)):
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n)


def read_log(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def proto(**kw):
    base = {"steps": 300, "timestep_fs": 2.0, "interval": 5, "temperatures_K": [600.0],
                "monitors": {"density_g_cm3": [2.0, 20.0]}}
    base.update(kw)
    return parse_protocol(base)


def test_nve_conserves_energy_and_writes_outputs(tmp_path):
    res = run_md(copper(), EMT(), proto(ensemble="nve", timestep_fs=1.0), tmp_path)
    with open(tmp_path / "md_log.csv") as fh:
        assert tuple(next(csv.reader(fh))) == LOG_COLUMNS
    lg = read_log(tmp_path / "md_log.csv")
    assert lg["step"][-1] == 300 and lg["time_ps"][-1] == pytest.approx(0.3)
    # energy drift and fluctuation in float64 with a 1 fs step: far below kT
    assert np.ptp(lg["etot_eV"]) < 2e-3 * len(copper())
    assert np.ptp(lg["epot_eV"]) > 10 * np.ptp(lg["etot_eV"])  # something actually moved
    assert np.isfinite(lg["pressure_GPa"]).all() and np.isfinite(lg["density_g_cm3"]).all()
    frames = ase.io.read(tmp_path / "trajectory.extxyz", ":")
    traj = ase.io.read(tmp_path / "trajectory.traj", ":")
    assert len(frames) == len(traj) == 61
    assert [f.info["step"] for f in traj] == list(range(0, 301, 5))
    assert traj[-1].info["time_fs"] == pytest.approx(300.0)
    assert res.stability.stable and res.steps == 300 and res.ns_per_day > 0


@pytest.mark.parametrize("thermostat", ["langevin", "bussi"])
def test_thermostat_reaches_target(tmp_path, thermostat):
    p = proto(ensemble="nvt", thermostat=thermostat, steps=600, initial_temperature_K=50.0,
              friction_per_fs=0.05, tdamp_fs=20.0)
    run_md(copper((2, 2, 1)), EMT(), p, tmp_path, temperature_K=600.0)
    T = read_log(tmp_path / "md_log.csv")["temperature_K"]
    assert T[0] < 150
    assert np.mean(T[len(T) // 2:]) == pytest.approx(600.0, rel=0.25)


def test_ramp_reaches_target_then_nose_hoover(tmp_path):
    p = proto(ensemble="nvt", thermostat="nose-hoover", steps=100, tdamp_fs=20.0,
              ramp={"start_K": 100, "duration_ps": 0.4, "every_steps": 1})
    res = run_md(copper(), EMT(), p, tmp_path, temperature_K=800.0)
    frames = ase.io.read(tmp_path / "trajectory.traj", ":")
    lg = read_log(tmp_path / "md_log.csv")
    ramp_end = 200  # 0.4 ps / 2 fs
    i = list(lg["step"]).index(ramp_end)
    assert lg["temperature_K"][0] == pytest.approx(100.0, rel=1e-6)
    assert lg["temperature_K"][i] == pytest.approx(800.0, rel=1e-6)  # rescaled exactly
    mid = list(lg["step"]).index(100)
    assert lg["temperature_K"][mid] == pytest.approx(450.0, rel=1e-6)  # linear ramp
    assert {f.info["phase"] for f in frames} == {"ramp", "production"}
    assert res.steps == 300


def test_run_protocol_dirs_and_distinct_seeds(tmp_path):
    p = proto(steps=10, temperatures_K=[300, 500], repeats=2, formats=["extxyz"])
    results = run_protocol(copper(), EMT(), p, tmp_path)
    assert sorted(d.name for d in tmp_path.iterdir()) == ["T300K_r0", "T300K_r1", "T500K_r0", "T500K_r1"]
    assert len({r.seed for r in results}) == 4
    v = [ase.io.read(Path(r.out_dir) / "trajectory.extxyz", 0).get_momenta() for r in results[:2]]
    assert not np.allclose(v[0], v[1])
    assert run_dir_name(1000.0, 2) == "T1000K_r2"


def test_protocol_rejects_unknown_key(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("ensemble: nvt\ntemperatures_K: [300]\nramp: {start_K: 100, duratoin_ps: 5}\n")
    with pytest.raises(ProtocolError, match=r"p\.yaml: ramp\.duratoin_ps: unknown key 'duratoin_ps'"):
        load_protocol(f)
    with pytest.raises(ProtocolError, match="thermostat"):
        parse_protocol({"thermostat": "andersen"})


def test_examples_parse():
    for f in sorted((Path(__file__).parents[1] / "examples" / "md").glob("*.yaml")):
        load_protocol(f)


# Kill and resume (deterministic, every engine): tests/test_md_engines.py


def test_repeats_on_workers_are_the_runs_made_one_after_another(tmp_path):
    """A reference method's repeats side by side on 2 worker processes, each with its own
    calculator, give the runs that one process makes one after another, row for row; and a
    finished serial run is read back by the parallel path (same settings, nothing rerun)."""
    from potlab.reference import get_method

    method = get_method("ase.calculators.emt:EMT")
    p = proto(steps=100, repeats=3, thermostat="langevin")
    serial = run_protocol(copper(), method.calculator(copper()), p, tmp_path / "serial")
    side = run_protocol(copper(), method.calculator(copper()), p, tmp_path / "side",
                        make_calculator=method.calculator, workers=2)
    assert [r.seed for r in side] == [r.seed for r in serial] == [0, 1, 2]
    for a, b in zip(serial, side):
        la, lb = read_log(Path(a.out_dir) / "md_log.csv"), read_log(Path(b.out_dir) / "md_log.csv")
        assert len(la["step"]) == 21
        for key in ("epot_eV", "etot_eV", "temperature_K"):
            np.testing.assert_allclose(lb[key], la[key], rtol=0, atol=1e-10)
    mtime = (Path(serial[0].out_dir) / "md_log.csv").stat().st_mtime_ns
    again = run_protocol(copper(), method.calculator(copper()), p, tmp_path / "serial",
                         make_calculator=method.calculator, workers=2)
    assert (Path(serial[0].out_dir) / "md_log.csv").stat().st_mtime_ns == mtime
    assert [r.steps for r in again] == [100, 100, 100]
