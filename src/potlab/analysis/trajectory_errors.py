"""Prediction errors along a trajectory (seed 003 Figure 7): every k-th frame relabelled with a
reference ASE calculator, compared with the model's energy and forces.

Model values come from ``model`` (an ASE calculator, e.g. ``potlab.load(path).calculator()``)
or, when None, from the results stored with each frame (``atoms.calc`` of an ASE .traj/extxyz
written during MD). Per frame: energy error (model - reference) in meV/atom, force RMSE over
all components in meV/A, the reference energy per atom (eV).

Resumable: with ``out`` (CSV), finished frames are appended one row at a time (flushed), and a
rerun skips the frames already in the file.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from potlab.progress import progress

COLUMNS = ("frame", "time_ps", "energy_error_mev_per_atom", "force_rmse_mev_per_a",
           "ref_energy_ev_per_atom")


def _model_values(atoms: Atoms, model, k: int) -> tuple[float, np.ndarray]:
    if model is None:
        if atoms.calc is None:
            raise ValueError(f"frame {k}: field 'energy': no stored model results; pass model=")
        return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces())
    a = atoms.copy()
    a.calc = model
    return float(a.get_potential_energy()), np.asarray(a.get_forces())


def errors_along_trajectory(frames: list[Atoms], reference, every: int = 10, model=None,
                            timestep_fs: float | None = None,
                            out: str | os.PathLike[str] | None = None) -> list[dict]:
    """Rows of :data:`COLUMNS` for frames 0, k, 2k, ... (time from ``info["time_fs"]``, else
    ``frame * timestep_fs``, else NaN)."""
    if every < 1:
        raise ValueError("every must be >= 1")
    done: dict[int, dict] = {}
    path = Path(out) if out is not None else None
    if path is not None and path.exists():
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                done[int(row["frame"])] = {c: float(row[c]) for c in COLUMNS}
    todo = [k for k in range(0, len(frames), every) if k not in done]
    fh = None
    if path is not None:
        new = not path.exists()
        fh = path.open("a", newline="")
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
    try:
        for k in progress(todo, desc="relabel", unit="frame"):
            atoms = frames[k]
            n = len(atoms)
            e_model, f_model = _model_values(atoms, model, k)
            ref = atoms.copy()
            ref.calc = reference
            e_ref, f_ref = float(ref.get_potential_energy()), np.asarray(ref.get_forces())
            if "time_fs" in atoms.info:
                t_ps = float(atoms.info["time_fs"]) / 1000
            else:
                t_ps = k * timestep_fs / 1000 if timestep_fs else float("nan")
            row = {"frame": k, "time_ps": t_ps,
                   "energy_error_mev_per_atom": (e_model - e_ref) / n * 1000,
                   "force_rmse_mev_per_a": float(np.sqrt(((f_model - f_ref) ** 2).mean()) * 1000),
                   "ref_energy_ev_per_atom": e_ref / n}
            done[k] = row
            if fh is not None:
                writer.writerow(row)
                fh.flush()
    finally:
        if fh is not None:
            fh.close()
    return [done[k] for k in sorted(done)]
