"""Parity metrics of predicted against reference labels: MAE, RMSE, R^2 per subset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _r2(pred: np.ndarray, ref: np.ndarray) -> float:
    ss_res = float(((pred - ref) ** 2).sum())
    ss_tot = float(((ref - ref.mean()) ** 2).sum())
    return float("nan") if ss_tot == 0 else 1.0 - ss_res / ss_tot


def parity_metrics(
    energy_pred: np.ndarray,
    energy_ref: np.ndarray,
    n_atoms: np.ndarray,
    forces_pred: np.ndarray | None = None,
    forces_ref: np.ndarray | None = None,
) -> dict[str, float]:
    """Errors of one set of frames.

    energy_* [n_frames] in eV, n_atoms [n_frames], forces_* [sum n_atoms, 3] in eV/A.
    Returns energy_mae/rmse_mev_per_atom (per-atom energy errors, meV/atom),
    forces_mae/rmse_mev_per_a (per component, meV/A), forces_r2 (over components),
    energy_r2 (per-atom energies), n_frames, n_atoms.
    """
    n = np.asarray(n_atoms, dtype=float)
    de = (np.asarray(energy_pred) - np.asarray(energy_ref)) / n
    out = {
        "n_frames": len(n),
        "n_atoms": int(n.sum()),
        "energy_mae_mev_per_atom": float(np.abs(de).mean() * 1000) if len(n) else float("nan"),
        "energy_rmse_mev_per_atom": float(np.sqrt((de**2).mean()) * 1000) if len(n) else float("nan"),
        "energy_r2": _r2(np.asarray(energy_pred) / n, np.asarray(energy_ref) / n) if len(n) > 1 else float("nan"),
    }
    if forces_pred is not None and forces_ref is not None and len(forces_ref):
        df = np.asarray(forces_pred) - np.asarray(forces_ref)
        out["forces_mae_mev_per_a"] = float(np.abs(df).mean() * 1000)
        out["forces_rmse_mev_per_a"] = float(np.sqrt((df**2).mean()) * 1000)
        out["forces_r2"] = _r2(np.asarray(forces_pred).ravel(), np.asarray(forces_ref).ravel())
    return out


def parity_by_subset(
    energy_pred: np.ndarray,
    energy_ref: np.ndarray,
    n_atoms: np.ndarray,
    forces_pred: np.ndarray,
    forces_ref: np.ndarray,
    subsets: Sequence[str],
) -> dict[str, dict[str, float]]:
    """:func:`parity_metrics` overall (key ``"overall"``) and per subset name."""
    n_atoms = np.asarray(n_atoms)
    starts = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    result = {"overall": parity_metrics(energy_pred, energy_ref, n_atoms, forces_pred, forces_ref)}
    names = np.asarray(list(subsets))
    for name in sorted(set(names.tolist())):
        idx = np.flatnonzero(names == name)
        atoms = np.concatenate([np.arange(starts[k], starts[k] + n_atoms[k]) for k in idx])
        result[name] = parity_metrics(
            np.asarray(energy_pred)[idx], np.asarray(energy_ref)[idx], n_atoms[idx],
            np.asarray(forces_pred)[atoms], np.asarray(forces_ref)[atoms],
        )
    return result


def evaluate(potential, frames, batch_size: int = 16) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Predict labelled frames with ``potential`` and compare with their REF labels.

    Returns (metrics by subset with key "overall", arrays for a parity plot: energy
    per atom pred/ref in eV/atom, force components pred/ref in eV/A).
    """
    from potlab.data.keys import (
        CONFIG_TYPE_KEY,
        DEFAULT_CONFIG_TYPE,
        REF_ENERGY_KEY,
        REF_FORCES_KEY,
    )
    from potlab.potential import predict

    pred = predict(potential, frames, batch_size=batch_size)
    e_ref = np.array([a.info[REF_ENERGY_KEY] for a in frames], dtype=float)
    f_ref = np.concatenate([a.arrays[REF_FORCES_KEY] for a in frames])
    names = [str(a.info.get(CONFIG_TYPE_KEY, DEFAULT_CONFIG_TYPE)) for a in frames]
    metrics = parity_by_subset(pred["energy"], e_ref, pred["n_atoms"], pred["forces"], f_ref, names)
    arrays = {
        "energy_pred": pred["energy"] / pred["n_atoms"], "energy_ref": e_ref / pred["n_atoms"],
        "forces_pred": pred["forces"].ravel(), "forces_ref": f_ref.ravel(),
    }
    return metrics, arrays
