"""NVE energy drift (meV/atom/ps) and MD speed (ns/day) from an MD log.

Drift: least-squares line through total energy ``etot_eV`` against ``time_ps``; the slope
divided by the number of atoms, in meV/atom/ps, with its standard error. The log has no atom
count, so it is given (``n_atoms``, the CLI's ``--atoms N``) or read from the first frame of a
trajectory beside the log (``trajectory=``; the CLI looks for ``*.traj``, ``*.extxyz``, ``*.xyz``
in the log's folder and uses the first, in that order: a run writes one trajectory, maybe in two
formats, and all give the same atom count).

Speed: from a wall-clock column (seconds since start; any column whose name starts with
``wall``, e.g. ``wall_s``) when present: simulated ns / elapsed days over the whole log;
else from the ``result.json`` that ``potlab md`` writes beside its log.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from potlab.analysis.trajio import read_md_log


def energy_drift(time_ps: np.ndarray, etot_eV: np.ndarray, n_atoms: int) -> dict:
    """``{"drift_mev_per_atom_ps", "drift_err_mev_per_atom_ps", "duration_ps",
    "etot_std_mev_per_atom"}`` from a total-energy series."""
    t = np.asarray(time_ps, dtype=float)
    e = np.asarray(etot_eV, dtype=float)
    if t.size < 3 or n_atoms < 1:
        raise ValueError("energy_drift: need >= 3 log rows and n_atoms >= 1")
    a = np.stack([t, np.ones_like(t)], axis=1)
    coef, _, _, _ = np.linalg.lstsq(a, e, rcond=None)
    resid = e - a @ coef
    sxx = float(((t - t.mean()) ** 2).sum())
    err = float(np.sqrt((resid**2).sum() / (t.size - 2) / sxx)) if sxx > 0 else float("nan")
    scale = 1000.0 / n_atoms
    return {"drift_mev_per_atom_ps": float(coef[0] * scale),
            "drift_err_mev_per_atom_ps": err * scale,
            "duration_ps": float(t[-1] - t[0]),
            "etot_std_mev_per_atom": float(resid.std() * scale),
            "n_atoms": int(n_atoms)}


def find_trajectory_beside(log_path: str | os.PathLike[str]) -> Path | None:
    """A trajectory file in the log's folder (``*.traj`` first, then ``*.extxyz``, ``*.xyz``)."""
    folder = Path(log_path).resolve().parent
    for ext in ("*.traj", "*.extxyz", "*.xyz"):
        found = sorted(folder.glob(ext))
        if found:
            return found[0]
    return None


def md_speed_ns_per_day(log: dict[str, np.ndarray]) -> float | None:
    """Simulated ns per wall-clock day from a ``wall*`` column (s), else None."""
    wall = next((k for k in log if k.lower().startswith("wall")), None)
    if wall is None:
        return None
    elapsed_s = float(log[wall][-1] - log[wall][0])
    sim_ns = float(log["time_ps"][-1] - log["time_ps"][0]) / 1000.0
    return sim_ns / (elapsed_s / 86400.0) if elapsed_s > 0 else None


def drift_from_log(path: str | os.PathLike[str], n_atoms: int | None = None,
                   trajectory: str | os.PathLike[str] | None = None) -> dict:
    """Energy drift and MD speed of an MD log (atom count from ``n_atoms`` or ``trajectory``,
    else a trajectory beside the log)."""
    log = read_md_log(path, required=("time_ps", "etot_eV"))
    if n_atoms is None:
        traj = trajectory or find_trajectory_beside(path)
        if traj is None:
            raise ValueError(f"{path}: the log has no atom count: give n_atoms (--atoms N) or a "
                             "trajectory (--trajectory FILE)")
        import ase.io

        n_atoms = len(ase.io.read(traj, index=0))
    out = energy_drift(log["time_ps"], log["etot_eV"], n_atoms)
    out["ns_per_day"] = md_speed_ns_per_day(log)
    result = Path(path).with_name("result.json")  # potlab md's run summary, when beside the log
    if out["ns_per_day"] is None and result.exists():
        import json

        out["ns_per_day"] = json.loads(result.read_text()).get("ns_per_day")
    out["log"] = str(path)
    return out
