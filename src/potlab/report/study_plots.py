"""Study figures, one per question and every model in it (plots at a glance, not one PNG per
run): force parity grid, RDF overlays per material, Arrhenius with all models and the
reference, a stability timeline of every MD run, Li density maps side by side, training
curves. Each function takes plain arrays and returns the path it wrote."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from potlab.report.md_plots import _save

REF_STYLE = {"color": "k", "ls": "--", "lw": 1.6}


def _colors(labels: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {k: cycle[i % len(cycle)] for i, k in enumerate(labels)}


def parity_grid(parity: dict[str, dict[str, dict[str, np.ndarray]]], materials: list[str],
                path: Path, metrics: dict[str, dict[str, dict]] | None = None) -> Path:
    """Force components predicted vs reference: one row per model, one column per material."""
    models = list(parity)
    fig, axes = plt.subplots(len(models), len(materials), squeeze=False,
                             figsize=(3.1 * len(materials), 2.9 * len(models)))
    for i, m in enumerate(models):
        for j, mat in enumerate(materials):
            ax = axes[i][j]
            arr = parity[m].get(mat)
            if arr is None:
                ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
                continue
            ref, pred = arr["forces_ref"], arr["forces_pred"]
            ax.scatter(ref, pred, s=2, alpha=0.35, lw=0)
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
            note = ""
            if metrics and m in metrics and mat in metrics[m]:
                mm = metrics[m][mat]
                note = f"\nMAE {mm['forces_mae_mev_per_a']:.0f} meV/Å, R² {mm['forces_r2']:.3f}"
            ax.set_title(f"{m} on {mat}{note}", fontsize=8)
            if i == len(models) - 1:
                ax.set_xlabel("reference F (eV/Å)", fontsize=8)
            if j == 0:
                ax.set_ylabel("predicted F (eV/Å)", fontsize=8)
            ax.tick_params(labelsize=7)
    return _save(fig, path)


def rdf_overlays(r: np.ndarray, reference: dict[str, np.ndarray],
                 models: dict[str, dict[str, np.ndarray]], path: Path, title: str,
                 ref_label: str = "reference") -> Path:
    """g(r) per temperature (one panel each): the reference dashed, every model over it."""
    temps = list(reference)
    colors = _colors(list(models))
    fig, axes = plt.subplots(1, len(temps), squeeze=False, figsize=(4.2 * len(temps), 3.4))
    for ax, t in zip(axes[0], temps, strict=True):
        ax.plot(r, reference[t], label=ref_label, **REF_STYLE)
        for m, curves in models.items():
            if t in curves:
                ax.plot(r, curves[t], lw=1.1, color=colors[m], label=m)
        ax.set_title(f"{title}, {t} K", fontsize=9)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def arrhenius_all(data: dict[str, dict[str, dict]], materials: list[str], path: Path,
                  ref_label: str, target_K: float = 300.0) -> Path:
    """log10 sigma vs 1000/T per material: points per temperature and the Arrhenius line
    extended to ``target_K`` for the reference and every model. ``data[label][material]`` is
    ``{"T": [...], "sigma": [...], "fit": extrapolation dict or None}``."""
    labels = list(data)
    colors = _colors([x for x in labels if x != ref_label])
    fig, axes = plt.subplots(1, len(materials), squeeze=False, figsize=(4.4 * len(materials), 3.8))
    for ax, mat in zip(axes[0], materials, strict=True):
        for lab in labels:
            d = data[lab].get(mat)
            if not d or not d["T"]:
                continue
            style = REF_STYLE if lab == ref_label else {"color": colors[lab], "lw": 1.0}
            t = np.asarray(d["T"], dtype=float)
            s = np.asarray(d["sigma"], dtype=float)
            ok = s > 0
            ax.plot(1000 / t[ok], np.log10(s[ok]), "o", color=style["color"], ms=4)
            fit = d.get("fit")
            if fit:
                tt = np.linspace(target_K, t.max(), 50)
                ln = fit["ln_prefactor"] - fit["ea_eV"] / (8.617333262e-5 * tt)
                ax.plot(1000 / tt, np.log10(np.exp(ln) / tt), label=f"{lab} ({fit['ea_eV']:.2f} eV)",
                        **style)
            else:
                ax.plot([], [], label=f"{lab} (no fit)", **style)
        ax.axvline(1000 / target_K, color="0.7", lw=0.8)
        ax.set_xlabel("1000 / T (1/K)")
        ax.set_ylabel("log10 σ (mS/cm)")
        ax.set_title(mat, fontsize=9)
        ax.legend(fontsize=6)
    return _save(fig, path)


def stability_runs(rows: list[tuple[str, float, bool, str | None]], t_max_ps: float,
                   path: Path) -> Path:
    """Every MD run as a point at its t_stab on the row of its potential and material (green:
    reached the end; red: stopped, with the monitor's name)."""
    groups = list(dict.fromkeys(r[0] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(groups) + 1.3))
    for y, g in enumerate(groups):
        for (name, t, ok, why) in rows:
            if name != g:
                continue
            ax.plot([t], [y], "o" if ok else "x", color="tab:green" if ok else "tab:red", ms=6)
            if not ok and why:
                ax.text(t, y + 0.15, f" {why}", fontsize=6, color="tab:red")
        ax.plot([0, t_max_ps], [y, y], color="0.85", lw=0.8, zorder=0)
    ax.set_yticks(range(len(groups)), groups, fontsize=7)
    ax.axvline(t_max_ps, color="0.5", ls="--", lw=0.8)
    ax.set_xlim(0, t_max_ps * 1.08)
    ax.invert_yaxis()
    ax.set_xlabel("t_stab (ps): o reached the end, x stopped by a monitor")
    return _save(fig, path)


def density_maps(maps: dict[str, dict[str, np.ndarray]], materials: list[str], path: Path,
                 axis: int = 0) -> Path:
    """Li occupancy summed along one fractional axis: rows = potentials, columns = materials."""
    labels = list(maps)
    fig, axes = plt.subplots(len(labels), len(materials), squeeze=False,
                             figsize=(2.9 * len(materials), 2.5 * len(labels)))
    for i, lab in enumerate(labels):
        for j, mat in enumerate(materials):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            d = maps[lab].get(mat)
            if d is None:
                ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes, fontsize=8)
            else:
                ax.imshow(d.sum(axis=axis).T, origin="lower", cmap="magma", aspect="equal")
            if j == 0:
                ax.set_ylabel(lab, fontsize=8)
            if i == 0:
                ax.set_title(mat, fontsize=9)
    return _save(fig, path)


def training_curves(curves: dict[str, Path], path: Path) -> Path:
    """Validation force MAE against training time, every model and seed."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, csv_path in curves.items():
        try:
            with open(csv_path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError:
            continue
        if not rows:
            continue
        t = np.array([float(r["time_s"]) for r in rows]) / 60
        f = np.array([float(r["valid_forces_mae_mev_per_a"]) for r in rows])
        ax.semilogy(t, f, lw=1.1, label=label)
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("validation force MAE (meV/Å)")
    ax.legend(fontsize=7)
    return _save(fig, path)
