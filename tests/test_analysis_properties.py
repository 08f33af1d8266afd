"""Density/KL, quality score Q, NVE drift, occupancy paths, COM diffusion, errors along MD."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from potlab.analysis.density import densities_from_frames, densities_from_log, kl_divergence
from potlab.analysis.drift import drift_from_log, energy_drift
from potlab.analysis.molecular_diffusion import com_diffusion, find_molecules
from potlab.analysis.paths import occupancy, overlap, write_cube
from potlab.analysis.quality import MemberRuns, quality_score
from potlab.analysis.trajectory_errors import errors_along_trajectory
from potlab.analysis.trajio import trajectory_arrays
from potlab.data.errors import DataError
from potlab.md.trajectory import LOG_COLUMNS as MD_LOG_COLUMNS


def write_log(path, t_ps, etot, density=None, wall=None):
    cols = list(MD_LOG_COLUMNS) + (["wall_s"] if wall is not None else [])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for k, t in enumerate(t_ps):
            row = [k, t, 300.0, etot[k] - 1.0, 1.0, etot[k], 0.0, 1000.0,
                   density[k] if density is not None else 1.0]
            w.writerow(row + ([wall[k]] if wall is not None else []))


def test_kl_zero_for_identical_positive_otherwise(rng):
    a = rng.normal(1.0, 0.02, 2000)
    assert kl_divergence(a, a) == 0.0
    b = rng.normal(1.03, 0.02, 2000)
    c = rng.normal(1.0, 0.02, 2000)
    assert kl_divergence(a, b) > 0.5
    assert 0 < kl_divergence(a, c) < kl_divergence(a, b)


def test_densities_from_frames_and_log(tmp_path, rng):
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    rho = densities_from_frames([cu])[0]
    assert rho == pytest.approx(4 * 63.546 * 1.66053906660 / 3.6**3, rel=1e-4)
    t = np.arange(100) * 0.1
    write_log(tmp_path / "md_log.csv", t, np.zeros(100), density=1 + 0.01 * rng.normal(size=100))
    assert densities_from_log(tmp_path / "md_log.csv", skip_ps=5.0).size == 50


def test_quality_score_terms(rng):
    refs = [rng.normal(0.92, 0.01, 3000) for _ in range(3)]
    good = MemberRuns(2000.0, 2000.0, rng.normal(0.92, 0.01, 3000), diffusivity=1.0)
    bad = MemberRuns(2000.0, 2000.0, rng.normal(1.10, 0.01, 3000), diffusivity=3.0)
    short = MemberRuns(250.0, 100.0)
    q = quality_score([good], refs, d_ref=1.0)
    assert q["Q"] == pytest.approx(3.0, abs=1e-9)  # stable, density within reference spread
    q = quality_score([good, bad, short], refs, d_ref=1.0)
    m = q["members"]
    assert m[1]["density"] < 0.1 and m[1]["diffusivity"] == pytest.approx(1 - np.tanh(2.0))
    assert m[2] == {"Q": 0.25, "stability": 0.25, "density": 0.0, "diffusivity": 0.0, "kl": None}
    assert q["Q"] == pytest.approx(np.mean([r["Q"] for r in m]))


def test_drift_of_synthetic_log(tmp_path, rng):
    n_atoms, slope = 64, 0.002  # eV / ps for the whole system
    t = np.arange(500) * 0.01
    etot = -100 + slope * t + rng.normal(scale=1e-4, size=t.size)
    res = energy_drift(t, etot, n_atoms)
    assert res["drift_mev_per_atom_ps"] == pytest.approx(slope * 1000 / n_atoms, rel=0.02)
    wall = np.linspace(0, 86.4, t.size)  # 4.99 ps in 86.4 s (1/1000 day)
    write_log(tmp_path / "md_log.csv", t, etot, wall=wall)
    with pytest.raises(ValueError, match="atom count"):
        drift_from_log(tmp_path / "md_log.csv")
    Atoms("Ar" * n_atoms, positions=rng.random((n_atoms, 3)) * 9, cell=[9] * 3, pbc=True).write(
        tmp_path / "md.traj")
    res = drift_from_log(tmp_path / "md_log.csv")  # atom count from the trajectory beside it
    assert res["n_atoms"] == n_atoms
    assert res["ns_per_day"] == pytest.approx(t[-1] / 1000 / (86.4 / 86400), rel=1e-6)


def test_bad_log_names_file_row_and_column(tmp_path):
    p = tmp_path / "md_log.csv"
    p.write_text("step,time_ps,etot_eV\n0,0.0,1.0\n1,0.1,oops\n")
    with pytest.raises(DataError, match=r"md_log.csv: frame 1: field 'etot_eV'"):
        drift_from_log(p, n_atoms=2)
    p.write_text("step,time_ps\n0,0.0\n")
    with pytest.raises(DataError, match="etot_eV"):
        drift_from_log(p, n_atoms=2)


def hopping_frames(rng, sites, n_frames=60):
    cell = np.diag([6.0, 6.0, 6.0])
    frames = []
    for _ in range(n_frames):
        li = sites[rng.integers(0, len(sites), 4)] + rng.normal(scale=0.1, size=(4, 3))
        pos = np.vstack([li, [[3.0, 3.0, 3.0]]])
        frames.append(Atoms("Li4S", positions=pos, cell=cell, pbc=True))
    return frames


def test_occupancy_overlap_and_cube(tmp_path, rng):
    a_sites = np.array([[1.0, 1.0, 1.0], [5.5, 1.0, 1.0]])  # second one wraps through the face
    b_sites = np.array([[3.0, 4.5, 1.0], [1.0, 4.5, 4.5]])
    fa = hopping_frames(rng, a_sites)
    occ = occupancy(fa, "Li", spacing=0.5, smooth=1.0)
    assert overlap(occ, occ) == pytest.approx(1.0)
    # density integrates to the number of Li atoms per frame
    voxel = np.linalg.det(occ.cell) / occ.density.size
    assert occ.density.sum() * voxel == pytest.approx(4.0)
    same = occupancy(hopping_frames(rng, a_sites), "Li", shape=occ.density.shape, smooth=1.0)
    other = occupancy(hopping_frames(rng, b_sites), "Li", shape=occ.density.shape, smooth=1.0)
    assert overlap(occ, same) > 0.9
    assert overlap(occ, other) < 0.2
    write_cube(occ, tmp_path / "li.cube")
    from ase.io.cube import read_cube_data

    data, atoms = read_cube_data(str(tmp_path / "li.cube"))
    assert data.shape == occ.density.shape and len(atoms) == 5


def test_com_diffusion_blocks(rng):
    # 8 rigid H2O molecules performing random walks (no rotation): COM MSD is the walk's
    n_mol, n_frames, s, dt = 8, 400, 0.05, 10.0
    base = [molecule("H2O") for _ in range(n_mol)]
    offsets = rng.random((n_mol, 3)) * 12
    walk = np.cumsum(rng.normal(scale=s, size=(n_frames, n_mol, 3)), axis=0)
    frames = []
    for k in range(n_frames):
        pos = np.vstack([m.positions + offsets[i] + walk[k, i] for i, m in enumerate(base)])
        a = Atoms("OH2" * n_mol, positions=pos, cell=[14.0] * 3, pbc=True)
        a.info["time_fs"] = k * dt
        frames.append(a)
    labels, formulas = find_molecules(frames[0])
    assert formulas == ["H2O"] * n_mol
    assert np.array_equal(labels, np.repeat(np.arange(n_mol), 3))
    traj = trajectory_arrays(frames)
    res = com_diffusion(traj, block_ps=1.0, stride_ps=0.2, ballistic_ps=0.1)
    h2o = res["H2O"]
    assert h2o.n_molecules == n_mol and h2o.n_blocks == 15  # starts 0, 20, ..., 280 frames
    d_true = s**2 / (2 * dt) * 0.1
    assert h2o.diffusivity_cm2_s == pytest.approx(d_true, rel=0.35)
    assert h2o.diffusivity_err_cm2_s > 0


def test_errors_along_trajectory_resumable(tmp_path):
    from ase.md.verlet import VelocityVerlet

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=1)
    atoms.calc = EMT()
    frames = []
    dyn = VelocityVerlet(atoms, timestep=2.0)
    for k in range(6):
        dyn.run(5)
        a = atoms.copy()
        a.info["time_fs"] = 10.0 * (k + 1)
        frames.append(a)
    out = tmp_path / "errors.csv"
    rows = errors_along_trajectory(frames[:4], EMT(), every=2, model=LennardJones(), out=out)
    assert [r["frame"] for r in rows] == [0, 2]
    rows = errors_along_trajectory(frames, EMT(), every=2, model=LennardJones(), out=out)
    assert [r["frame"] for r in rows] == [0, 2, 4]
    assert len(out.read_text().strip().splitlines()) == 4  # header + 3, nothing redone
    assert rows[2]["time_ps"] == pytest.approx(0.05)
    same = errors_along_trajectory(frames, EMT(), every=3, model=EMT())
    assert all(abs(r["energy_error_mev_per_atom"]) < 1e-9 for r in same)
    assert all(r["force_rmse_mev_per_a"] < 1e-9 for r in same)
    assert rows[0]["force_rmse_mev_per_a"] > 1.0
