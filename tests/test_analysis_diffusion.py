"""MSD and diffusivity: FFT = direct, random-walk slope, unwrapping, agreement with pymatgen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from potlab.analysis.conductivity import (
    arrhenius_fit,
    extrapolate_conductivity,
    nernst_einstein,
)
from potlab.analysis.diffusion import diffusivity, msd_direct, msd_fft
from potlab.analysis.trajio import Trajectory, read_pymatgen_json, trajectory_arrays
from potlab.analysis.unwrap import unwrap_positions

DATA = Path(__file__).parent / "data" / "diffusion" / "DiffusionAnalyzer.json"


def random_walk(rng, frames, atoms, step=0.1):
    return np.cumsum(rng.normal(scale=step, size=(frames, atoms, 3)), axis=0)


def test_fft_msd_equals_direct(rng):
    x = random_walk(rng, 257, 4)
    assert np.allclose(msd_fft(x), msd_direct(x), atol=1e-9)


def test_unwrap_recovers_path(rng):
    cell = np.array([[5.0, 0, 0], [1.0, 5.0, 0], [0.5, 0.5, 5.0]])
    x = random_walk(rng, 400, 6, step=0.4) + 2.5
    frac = x @ np.linalg.inv(cell)
    wrapped = (frac % 1.0) @ cell
    assert np.abs(wrapped - x).max() > 4  # it really crossed boundaries
    un = unwrap_positions(wrapped, cell, True)
    assert np.allclose(un - un[0], x - x[0], atol=1e-9)


def test_random_walk_diffusivity_from_wrapped_frames(rng):
    # a 3D Gaussian random walk: <dx^2> per step per axis = s^2, so D = s^2 / (2 dt)
    s, dt_fs, n = 0.05, 10.0, 40
    box = 8.0
    x = random_walk(rng, 3000, n, step=s)
    frames = []
    for k, xk in enumerate(x):
        a = Atoms("Li" * n, positions=xk % box, cell=[box] * 3, pbc=True)
        a.info["time_fs"] = k * dt_fs
        frames.append(a)
    traj = trajectory_arrays(frames)
    res = diffusivity(traj, "Li", drift="none", method="potlab", fit_start_ps=1.0, fit_end_ps=6.0)
    d_true = s**2 / (2 * dt_fs) * 0.1  # A^2/fs -> cm^2/s
    assert res.diffusivity_cm2_s == pytest.approx(d_true, rel=0.1)
    assert res.conductivity_mS_cm is None


def test_skip_and_window_validation(rng):
    traj = Trajectory(positions=random_walk(rng, 100, 3), cells=np.tile(np.eye(3) * 10, (100, 1, 1)),
                      pbc=np.ones(3, bool), symbols=["Li"] * 3, masses=np.ones(3),
                      times_fs=np.arange(100) * 2.0, unwrapped=True)
    with pytest.raises(ValueError, match="leaves"):
        diffusivity(traj, "Li", skip_ps=1.0)
    with pytest.raises(ValueError, match="no Na atoms"):
        diffusivity(traj, "Na")


def test_agrees_with_pymatgen():
    import pymatgen.analysis.diffusion  # noqa: F401
    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer

    ref = DiffusionAnalyzer.from_dict(json.loads(DATA.read_text()))
    traj = read_pymatgen_json(DATA)  # potlab's own reader, no pymatgen
    assert traj.n_frames == 1000 and traj.n_atoms == 50
    ours = diffusivity(traj, "Li", traj.temperature_K, method="pymatgen")
    assert ours.diffusivity_cm2_s == pytest.approx(ref.diffusivity, rel=0.01)
    assert ours.conductivity_mS_cm == pytest.approx(ref.conductivity, rel=0.01)
    assert ours.diffusivity_err_cm2_s == pytest.approx(ref.diffusivity_std_dev, rel=0.01)
    assert diffusivity(traj, "Li", traj.temperature_K).diffusivity_cm2_s == ours.diffusivity_cm2_s
    own = diffusivity(traj, "Li", 600.0, method="potlab")  # potlab's window lands close as well
    assert own.diffusivity_cm2_s == pytest.approx(ref.diffusivity, rel=0.25)


def test_nernst_einstein_and_haven():
    # 20 Li in 970.4 A^3 at 600 K with D = 1e-6 cm^2/s: n e^2 D / (V k T)
    s = nernst_einstein(1e-6, 20, 970.4, 600.0)
    expected = 20 / 970.4e-30 * (1.602176634e-19) ** 2 * 1e-10 / (1.380649e-23 * 600) * 10
    assert s == pytest.approx(expected, rel=1e-9)
    assert nernst_einstein(1e-6, 20, 970.4, 600.0, haven_ratio=0.5) == pytest.approx(2 * s)
    assert nernst_einstein(1e-6, 20, 970.4, 600.0, charge=2) == pytest.approx(4 * s)


def test_arrhenius_recovers_activation_energy(rng):
    ea, k_b = 0.25, 8.617333262e-5
    temps = np.array([500.0, 600.0, 700.0, 800.0, 900.0])
    sigma = 1e5 / temps * np.exp(-ea / (k_b * temps)) * np.exp(rng.normal(scale=0.02, size=5))
    fit = arrhenius_fit(temps, sigma)
    assert fit.ea_eV == pytest.approx(ea, abs=3 * fit.ea_err_eV + 0.005)
    out = extrapolate_conductivity(temps, sigma, 300.0)
    true300 = 1e5 / 300 * np.exp(-ea / (k_b * 300))
    assert out["sigma_mS_cm"] == pytest.approx(true300, rel=0.3)
    assert out["neg_log10_sigma_S_cm"] == pytest.approx(-np.log10(out["sigma_mS_cm"] / 1000))
    d = arrhenius_fit(temps, sigma * temps, quantity="diffusivity")  # D ~ sigma T
    assert d.ea_eV == pytest.approx(fit.ea_eV)
