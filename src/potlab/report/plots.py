"""Plots: parity (predicted vs reference) and training curves, written as PNG."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def parity_plot(arrays: dict[str, np.ndarray], path: str | Path, title: str = "",
                metrics: dict[str, float] | None = None) -> Path:
    """Energy per atom (meV/atom, shifted by the reference mean) and force components
    (eV/A), predicted against reference, side by side."""
    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    er, ep = arrays["energy_ref"], arrays["energy_pred"]
    mu = er.mean() if len(er) else 0.0
    panels = [
        (axes[0], (er - mu) * 1000, (ep - mu) * 1000, "energy - mean (meV/atom)",
         metrics and f"MAE {metrics.get('energy_mae_mev_per_atom', float('nan')):.2f} meV/atom"),
        (axes[1], arrays["forces_ref"], arrays["forces_pred"], "force component (eV/Å)",
         metrics and f"MAE {metrics.get('forces_mae_mev_per_a', float('nan')):.1f} meV/Å, "
                     f"R² {metrics.get('forces_r2', float('nan')):.4f}"),
    ]
    for ax, ref, pred, label, note in panels:
        ax.scatter(ref, pred, s=4, alpha=0.5, lw=0)
        if len(ref):
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
        if note:
            ax.set_title(note, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def training_curve(metrics_csv: str | Path, path: str | Path, title: str = "") -> Path:
    """Validation force MAE (meV/A) and energy MAE (meV/atom) against wall-clock time."""
    with open(metrics_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    t = np.array([float(r["time_s"]) for r in rows]) / 60
    f = np.array([float(r["valid_forces_mae_mev_per_a"]) for r in rows])
    e = np.array([float(r["valid_energy_mae_mev_per_atom"]) for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(t, f, label="forces MAE (meV/Å)")
    ax.semilogy(t, e, label="energy MAE (meV/atom)")
    ax.set_xlabel("wall-clock time (min)")
    ax.set_ylabel("validation error")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
