"""``potlab analyze ...`` prints the documented JSON keys (real files, real EMT MD)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.verlet import VelocityVerlet

from potlab.analysis.trajio import MD_LOG_COLUMNS
from potlab.cli import main

DATA = Path(__file__).parent / "data" / "diffusion" / "DiffusionAnalyzer.json"


@pytest.fixture(scope="module")
def cu_md(tmp_path_factory):
    """A 32-atom EMT Cu NVE run: extxyz with info['time_fs'] and an md_log.csv beside it."""
    out = tmp_path_factory.mktemp("cu_md")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_momenta(np.random.default_rng(0).normal(scale=0.3, size=(len(atoms), 3)))
    atoms.calc = EMT()
    dyn = VelocityVerlet(atoms, timestep=2.0)
    frames, rows = [], []
    for k in range(30):
        if k:
            dyn.run(5)
        a = atoms.copy()
        a.info["time_fs"] = 10.0 * k
        frames.append(a)
        ep, ek = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        rows.append([k * 5, 0.01 * k, atoms.get_temperature(), ep, ek, ep + ek, 0.0,
                     atoms.get_volume(), 8.9])
    write(out / "md.extxyz", frames)
    with open(out / "md_log.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(MD_LOG_COLUMNS)
        w.writerows(rows)
    return out


def run(capsys, *argv) -> dict:
    assert main(["analyze", *map(str, argv)]) == 0
    return json.loads(capsys.readouterr().out)


def test_rdf_json_with_reference_and_plot(cu_md, capsys, tmp_path):
    traj = cu_md / "md.extxyz"
    out = run(capsys, "rdf", traj, "--rmax", 5, "--bins", 50, "--reference", traj,
              "--plot", tmp_path / "rdf.png", "--json")
    assert len(out["r"]) == len(out["g"]) == 50
    assert out["error"]["mean_abs"] == 0.0 and out["stable"] is True
    assert (tmp_path / "rdf.png").stat().st_size > 0
    peak = out["r"][int(np.argmax(out["g"]))]
    assert abs(peak - 3.6 / np.sqrt(2)) < 0.2


def test_diffusion_json(capsys, tmp_path):
    out = run(capsys, "diffusion", DATA, "--species", "Li", "--temperature", 600,
              "--timestep", 20, "--method", "pymatgen", "--plot", tmp_path / "msd.png", "--json")
    assert out["diffusivity_cm2_s"] == pytest.approx(1.1613e-6, rel=1e-3)
    assert out["conductivity_mS_cm"] == pytest.approx(74.165, rel=1e-3)
    own = run(capsys, "diffusion", DATA, "--species", "Li", "--temperature", 600,
              "--skip-ps", 2, "--haven", 0.5, "--json")
    assert own["method"] == "potlab" and own["skip_ps"] == 2.0 and own["haven_ratio"] == 0.5


def test_arrhenius_json(capsys):
    t = np.array([600.0, 800.0, 1000.0])
    s = 1e5 / t * np.exp(-0.3 / (8.617333e-5 * t))
    out = run(capsys, "arrhenius", "--temperatures", *t, "--conductivities", *s, "--json")
    assert out["ea_eV"] == pytest.approx(0.3, rel=1e-4)
    assert out["neg_log10_sigma_S_cm"] == pytest.approx(-np.log10(1e2 / 300 * np.exp(
        -0.3 / (8.617333e-5 * 300))), rel=1e-3)


def test_stability_json(cu_md, capsys):
    out = run(capsys, "stability", cu_md / "md.extxyz", "--json")
    assert {"t_stab_ps", "reason"} <= set(out)
    # solid copper (8.9 g/cm3) starts outside the liquid density window, so it is not
    # judged by it (tests/test_md_monitors.py trips a window a cell starts inside)
    assert out["stable"] is True and out["t_stab_ps"] == pytest.approx(0.29)
    out = run(capsys, "stability", cu_md / "md.extxyz", "--density-range", 5, 12, "--json")
    assert out["stable"] is True and out["t_stab_ps"] == pytest.approx(0.29)
    assert out["reason"] is None
    out = run(capsys, "stability", cu_md / "md.extxyz", cu_md / "md.extxyz", "--json")
    assert len(out["runs"]) == 2 and out["t_stab_ps"] == pytest.approx(0.29)


def test_drift_json(cu_md, capsys):
    out = run(capsys, "drift", cu_md / "md_log.csv", "--json")  # atom count from md.extxyz
    assert out["n_atoms"] == 32
    assert abs(out["drift_mev_per_atom_ps"]) < 5.0  # NVE with a 2 fs step conserves energy
    again = run(capsys, "drift", cu_md / "md_log.csv", "--atoms", 16, "--json")
    assert again["drift_mev_per_atom_ps"] == pytest.approx(2 * out["drift_mev_per_atom_ps"])


def test_density_and_paths_json(cu_md, capsys, tmp_path):
    out = run(capsys, "density", cu_md / "md_log.csv", "--reference", cu_md / "md.extxyz",
              "--json")
    assert out["mean_g_cm3"] == pytest.approx(8.9) and out["kl_divergence"] > 0
    out = run(capsys, "paths", cu_md / "md.extxyz", "--species", "Cu", "--spacing", 0.5,
              "--compare", cu_md / "md.extxyz", "--cube", tmp_path / "cu.cube",
              "--plot", tmp_path / "cu.png", "--json")
    assert out["overlap"] == pytest.approx(1.0)
    assert (tmp_path / "cu.cube").exists() and (tmp_path / "cu.png").exists()


def test_bad_input_is_a_clear_error(capsys, tmp_path):
    assert main(["analyze", "diffusion", str(tmp_path / "missing.xyz"), "--json"]) == 2
    assert "missing.xyz" in capsys.readouterr().err
