"""``potlab analyze ...``: each number checked against an independent expectation (real
files, real EMT MD, pymatgen's own DiffusionAnalyzer, textbook values)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write
from ase.md.verlet import VelocityVerlet

from potlab.cli import main
from potlab.md.trajectory import LOG_COLUMNS

DATA = Path(__file__).parent / "data" / "diffusion" / "DiffusionAnalyzer.json"


def density_g_cm3(atoms) -> float:
    """Mass / volume from ASE's SI constants (kg per amu, 1 A^3 = 1e-24 cm^3)."""
    return atoms.get_masses().sum() * units._amu * 1e3 / (atoms.get_volume() * 1e-24)


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
                     atoms.get_volume(), density_g_cm3(atoms)])
    write(out / "md.extxyz", frames)
    with open(out / "md_log.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LOG_COLUMNS)
        w.writerows(rows)
    return out


def run(capsys, *argv) -> dict:
    assert main(["analyze", *map(str, argv)]) == 0
    return json.loads(capsys.readouterr().out)


def _edited(src: Path, dst: Path, edit, from_frame: int) -> Path:
    """A copy of a trajectory with ``edit(atoms)`` applied from ``from_frame`` on."""
    frames = read(src, ":")
    for a in frames[from_frame:]:
        edit(a)
    write(dst, frames)
    return dst


def test_rdf_json_against_a_different_reference(cu_md, capsys, tmp_path):
    traj = cu_md / "md.extxyz"

    def expand(a):  # the same crystal with a 4% larger lattice constant
        a.set_cell(a.cell * 1.04, scale_atoms=True)

    other = _edited(traj, tmp_path / "expanded.extxyz", expand, 0)
    out = run(capsys, "rdf", traj, "--rmax", 5, "--bins", 50, "--reference", other,
              "--plot", tmp_path / "rdf.png", "--json")
    r, g, g_ref = (np.array(out[k]) for k in ("r", "g", "g_reference"))
    assert len(r) == len(g) == len(g_ref) == 50
    # fcc nearest neighbours at a / sqrt(2), for each lattice constant
    assert r[np.argmax(g)] == pytest.approx(3.6 / np.sqrt(2), abs=0.15)
    assert r[np.argmax(g_ref)] == pytest.approx(1.04 * 3.6 / np.sqrt(2), abs=0.15)
    assert out["error"]["mean_abs"] == pytest.approx(np.abs(g - g_ref).mean(), rel=1e-6)
    assert out["error"]["mean_abs"] > 0.02 and out["stable"] is False
    assert (tmp_path / "rdf.png").stat().st_size > 0


def _pymatgen_reference(temperature=600.0):
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer

    return DiffusionAnalyzer.from_dict(json.loads(DATA.read_text()))  # pymatgen recomputes


def test_diffusion_default_is_pymatgens_fit(capsys, tmp_path):
    ref = _pymatgen_reference()
    out = run(capsys, "diffusion", DATA, "--species", "Li", "--temperature", 600,
              "--plot", tmp_path / "msd.png", "--json")  # no --method: the default
    assert out["method"] == "pymatgen"
    assert out["diffusivity_cm2_s"] == pytest.approx(ref.diffusivity, rel=1e-3)
    assert out["conductivity_mS_cm"] == pytest.approx(ref.conductivity, rel=1e-3)
    assert out["diffusivity_err_cm2_s"] == pytest.approx(ref.diffusivity_std_dev, rel=1e-3)
    beside = out["other_fit"]  # potlab's lag window of the same MSD, reported beside it
    assert beside["method"] == "potlab"
    assert beside["diffusivity_cm2_s"] != pytest.approx(ref.diffusivity, rel=1e-3)
    own = run(capsys, "diffusion", DATA, "--species", "Li", "--temperature", 600,
              "--method", "potlab", "--skip-ps", 2, "--haven", 0.5, "--json")
    assert own["method"] == "potlab" and own["skip_ps"] == 2.0 and own["haven_ratio"] == 0.5


def test_diffusion_of_an_extxyz_run_matches_pymatgen(capsys, tmp_path, rng):
    """potlab's own file path (wrapped extxyz frames): Li random walkers in a fixed
    framework, analysed by pymatgen's DiffusionAnalyzer from the same structures."""
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
    from pymatgen.io.ase import AseAtomsAdaptor

    box, n_li, dt_fs, n = 8.0, 12, 50.0, 400
    walk = 2.0 + np.cumsum(rng.normal(scale=0.15, size=(n, n_li, 3)), axis=0)
    host = np.array([[0.0, 0, 0], [4, 0, 0], [0, 4, 0], [0, 0, 4], [4, 4, 0], [4, 4, 4]])
    frames = []
    for k in range(n):
        a = bulk("Cu", "sc", a=box)
        a = a.__class__(["Li"] * n_li + ["S"] * len(host), cell=[box] * 3, pbc=True,
                        positions=np.vstack([walk[k], host]))
        a.wrap()
        a.info["time_fs"] = k * dt_fs
        frames.append(a)
    write(tmp_path / "walk.extxyz", frames)
    structures = [AseAtomsAdaptor.get_structure(a) for a in frames]
    ref = DiffusionAnalyzer.from_structures(structures, "Li", temperature=600, time_step=dt_fs,
                                            step_skip=1)
    out = run(capsys, "diffusion", tmp_path / "walk.extxyz", "--species", "Li",
              "--temperature", 600, "--json")
    assert out["diffusivity_cm2_s"] == pytest.approx(ref.diffusivity, rel=1e-3)
    assert out["conductivity_mS_cm"] == pytest.approx(ref.conductivity, rel=1e-3)


def test_arrhenius_json(capsys):
    t = np.array([600.0, 800.0, 1000.0])
    s = 1e5 / t * np.exp(-0.3 / (8.617333e-5 * t))
    out = run(capsys, "arrhenius", "--temperatures", *t, "--conductivities", *s, "--json")
    assert out["ea_eV"] == pytest.approx(0.3, rel=1e-4)
    assert out["neg_log10_sigma_S_cm"] == pytest.approx(-np.log10(1e2 / 300 * np.exp(
        -0.3 / (8.617333e-5 * 300))), rel=1e-3)


def test_stability_json(cu_md, capsys, tmp_path):
    traj = cu_md / "md.extxyz"
    out = run(capsys, "stability", traj, "--json")
    assert {"t_stab_ps", "reason"} <= set(out)
    # solid copper (8.9 g/cm3) starts outside the liquid density window, so it is not
    # judged by it; nothing else goes wrong in a short 300 K-ish EMT run
    assert out["stable"] is True and out["t_stab_ps"] == pytest.approx(0.29)

    def fuse(a):  # atom 1 onto atom 0 (0.3 A apart) from frame 20 (0.2 ps) on
        a.positions[1] = a.positions[0] + [0.3, 0, 0]

    fused = _edited(traj, tmp_path / "fused.extxyz", fuse, 20)
    out = run(capsys, "stability", fused, "--json")
    assert out["stable"] is False and out["frame"] == 20
    assert out["t_stab_ps"] == pytest.approx(0.20)
    assert re.search(r"bond 1-|atoms 0 and 1", out["reason"])  # the moved atom is named

    def expand(a):  # the cell swells by 30% in volume from frame 12 (0.12 ps) on
        a.set_cell(a.cell * 1.3 ** (1 / 3), scale_atoms=True)

    swollen = _edited(traj, tmp_path / "swollen.extxyz", expand, 12)
    out = run(capsys, "stability", swollen, "--density-range", 8, 10, "--json")
    assert out["stable"] is False and out["frame"] == 12 and "density" in out["reason"]
    out = run(capsys, "stability", swollen, "--density-range", "--json")  # monitor off
    assert out["stable"] is True
    out = run(capsys, "stability", traj, fused, "--json")
    assert len(out["runs"]) == 2 and out["t_stab_ps"] == pytest.approx(0.20)  # shortest on top


@pytest.mark.parametrize("values", [["1.5"], ["1", "2", "3"], ["3", "1"]])
def test_stability_density_range_needs_two_ordered_values(cu_md, capsys, values):
    assert main(["analyze", "stability", str(cu_md / "md.extxyz"), "--density-range", *values]) == 2
    err = capsys.readouterr().err
    assert "--density-range takes two values LOW HIGH" in err and len(err.strip().splitlines()) == 1


def test_drift_json(cu_md, capsys):
    out = run(capsys, "drift", cu_md / "md_log.csv", "--json")  # atom count from md.extxyz
    assert out["n_atoms"] == 32
    assert abs(out["drift_mev_per_atom_ps"]) < 5.0  # NVE with a 2 fs step conserves energy
    again = run(capsys, "drift", cu_md / "md_log.csv", "--atoms", 16, "--json")
    assert again["drift_mev_per_atom_ps"] == pytest.approx(2 * out["drift_mev_per_atom_ps"])


def test_density_json(cu_md, capsys, tmp_path):
    out = run(capsys, "density", cu_md / "md_log.csv", "--json")
    assert out["mean_g_cm3"] == pytest.approx(8.96, rel=0.01)  # copper at a = 3.6 A
    frames = run(capsys, "density", cu_md / "md.extxyz", "--json")  # from the cells and masses
    assert frames["mean_g_cm3"] == pytest.approx(out["mean_g_cm3"], rel=1e-6)

    def expand(a):
        a.set_cell(a.cell * 1.02, scale_atoms=True)

    other = _edited(cu_md / "md.extxyz", tmp_path / "expanded.extxyz", expand, 0)
    out = run(capsys, "density", cu_md / "md.extxyz", "--reference", other, "--bins", 4, "--json")
    assert out["reference_mean_g_cm3"] == pytest.approx(out["mean_g_cm3"] / 1.02**3, rel=1e-6)
    # constant densities in the first and the last of 4 bins, 0.5 pseudo-counts per bin:
    # P = (30.5, .5, .5, .5) / 32, Q reversed; D_KL = sum P ln(P/Q)
    p = np.array([30.5, 0.5, 0.5, 0.5]) / 32
    q = p[::-1]
    assert out["kl_divergence"] == pytest.approx(float(np.sum(p * np.log(p / q))), rel=1e-9)


def test_paths_json(cu_md, capsys, tmp_path):
    """Occupancy overlap falls as two runs' sites move apart: 1 for a run and itself,
    in between for a 0.3 A shift, near 0 when the atoms sit in the octahedral holes."""
    traj = cu_md / "md.extxyz"

    def shifted(dx):
        def edit(a):
            a.positions += [dx, 0, 0]
            a.wrap()
        return _edited(traj, tmp_path / f"shift{dx}.extxyz", edit, 0)

    def overlap(other, *extra):
        return run(capsys, "paths", traj, "--species", "Cu", "--compare", other, *extra,
                   "--json")

    out = overlap(shifted(1.8), "--cube", tmp_path / "cu.cube", "--plot", tmp_path / "cu.png")
    near = overlap(shifted(0.3))["overlap"]
    assert overlap(traj)["overlap"] == pytest.approx(1.0)
    assert out["overlap"] < 0.1 < near < 0.99
    assert (tmp_path / "cu.cube").exists() and (tmp_path / "cu.png").exists()
    from ase.io.cube import read_cube_data

    density, atoms = read_cube_data(str(tmp_path / "cu.cube"))
    assert list(density.shape) == out["grid"] and len(atoms) == 32


def test_bad_input_is_a_clear_error(capsys, tmp_path):
    assert main(["analyze", "diffusion", str(tmp_path / "missing.xyz"), "--json"]) == 2
    assert "missing.xyz" in capsys.readouterr().err
