"""Diffusion analysis speed: potlab against pymatgen's DiffusionAnalyzer on a long trajectory.

The trajectory: the bundled LGPS run (tests/data/diffusion/DiffusionAnalyzer.json, 50 atoms,
1000 frames) repeated end to end (each copy continues from where the last ended) with random sign flips per
axis and a small Gaussian perturbation, to ``--frames`` frames (default 25,000 = seed 000's 50 ps at every 2 fs
step). Both sides start from the same in-memory arrays (pymatgen: displacements; potlab: unwrapped
positions), so the times are the analyses alone. Prints both times, the ratio, and the two
diffusivities. Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffusion_speed.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "diffusion" / "DiffusionAnalyzer.json"


def long_trajectory(frames: int, seed: int = 0):
    from potlab.analysis.trajio import read_pymatgen_json

    base = read_pymatgen_json(DATA)
    disp = base.positions - base.positions[:1]  # [1000, 50, 3]
    steps = np.diff(disp, axis=0)
    reps = int(np.ceil((frames - 1) / len(steps)))
    rng = np.random.default_rng(seed)
    # each copy gets random sign flips per axis, so copies do not add up to a ballistic drift
    signs = rng.choice([-1.0, 1.0], size=(reps, 1, 1, 3))
    all_steps = (steps[None] * signs).reshape(-1, *steps.shape[1:])[: frames - 1]
    all_steps = all_steps + rng.normal(scale=0.01, size=all_steps.shape)
    pos = np.concatenate([base.positions[:1], base.positions[:1] + np.cumsum(all_steps, axis=0)])
    base.positions = pos
    base.cells = np.broadcast_to(base.cells[0], (frames, 3, 3)).copy()
    base.times_fs = np.arange(frames) * 2.0
    return base


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=25_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from pymatgen.analysis.diffusion.analyzer import DiffusionAnalyzer
    from pymatgen.core import Structure

    from potlab.analysis.diffusion import diffusivity

    traj = long_trajectory(args.frames)
    d = json.loads(DATA.read_text())
    structure = Structure.from_dict(d["structure"])
    disp = np.ascontiguousarray((traj.positions - traj.positions[:1]).transpose(1, 0, 2))

    t_pmg, pmg = best_of(lambda: DiffusionAnalyzer(structure, disp, "Li", 600, 2, 1), args.repeat)
    t_same, same = best_of(lambda: diffusivity(traj, "Li", 600, method="pymatgen"), args.repeat)
    t_own, own = best_of(lambda: diffusivity(traj, "Li", 600, method="potlab"), args.repeat)

    print(f"trajectory: {args.frames} frames x {traj.n_atoms} atoms (20 Li), 2 fs per frame")
    print(f"pymatgen DiffusionAnalyzer        {t_pmg:8.3f} s   D = {pmg.diffusivity:.4e} cm2/s"
          f"   sigma = {pmg.conductivity:.3f} mS/cm")
    print(f"potlab method='pymatgen'          {t_same:8.3f} s   D = {same.diffusivity_cm2_s:.4e}"
          f" cm2/s   sigma = {same.conductivity_mS_cm:.3f} mS/cm   speed-up {t_pmg / t_same:.1f}x")
    print(f"potlab method='potlab' (window)   {t_own:8.3f} s   D = {own.diffusivity_cm2_s:.4e}"
          f" cm2/s   sigma = {own.conductivity_mS_cm:.3f} mS/cm   speed-up {t_pmg / t_own:.1f}x")
    print(f"relative difference in D (pymatgen method): "
          f"{abs(same.diffusivity_cm2_s / pmg.diffusivity - 1):.2e}")


if __name__ == "__main__":
    main()
