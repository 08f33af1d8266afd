"""Plots of MD analyses, written as PNG (matplotlib, Agg): RDF overlays, MSD with the fit
window, Arrhenius with the 300 K extrapolation, density histograms, stability timelines,
occupancy-density projections. Each function returns the path it wrote."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def rdf_plot(rdfs: dict[str, object], path: str | Path, reference: object | None = None,
             title: str = "") -> Path:
    """g(r) curves (``{label: RDF}``) over an optional reference RDF (black, dashed)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    if reference is not None:
        ax.plot(reference.r, reference.g, "k--", lw=1.5, label="reference")
    for label, res in rdfs.items():
        ax.plot(res.r, res.g, lw=1.2, label=label)
    ax.axhline(1.0, color="0.7", lw=0.8)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def msd_plot(results: dict[str, object], path: str | Path, title: str = "") -> Path:
    """MSD against lag time for ``{label: DiffusionResult}``, the fit window shaded and the
    fitted line drawn."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, res in results.items():
        (line,) = ax.plot(res.msd.t_ps, res.msd.msd_A2, lw=1.2,
                          label=f"{label}: D = {res.diffusivity_cm2_s:.3g} cm²/s")
        ax.axvspan(res.fit_start_ps, res.fit_end_ps, color=line.get_color(), alpha=0.12)
        if res.fit_t_ps is not None:
            t = res.fit_t_ps
            sel = np.searchsorted(res.msd.t_ps, t)
            slope = res.diffusivity_cm2_s * 6 / 0.1 * 1000  # A^2 / ps
            c = float(np.mean(res.msd.msd_A2[sel] - slope * t))
            ax.plot(t, slope * t + c, "--", color=line.get_color(), lw=1)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def arrhenius_plot(temperatures_K: Sequence[float], conductivities_mS_cm: Sequence[float],
                   path: str | Path, fit: object | None = None, target_K: float = 300.0,
                   title: str = "") -> Path:
    """log10 sigma against 1000/T, the Arrhenius line extended to ``target_K`` (open marker)."""
    t = np.asarray(temperatures_K, dtype=float)
    s = np.asarray(conductivities_mS_cm, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(1000 / t, np.log10(s), "o", label="MD")
    if fit is not None:
        tt = np.linspace(min(t.min(), target_K), t.max(), 100)
        ax.plot(1000 / tt, np.log10(fit.predict(tt)), "-", lw=1,
                label=f"Ea = {fit.ea_eV:.3f} eV")
        s_t = float(fit.predict(target_K))
        ax.plot([1000 / target_K], [np.log10(s_t)], "s", mfc="none",
                label=f"{target_K:g} K: {s_t:.3g} mS/cm")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("log10 σ (mS/cm)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def density_histogram(samples: dict[str, np.ndarray], path: str | Path, bins: int = 40,
                      title: str = "") -> Path:
    """Normalised histograms of densities (g/cm^3), one per label, on common bins."""
    allv = np.concatenate([np.asarray(v) for v in samples.values()])
    edges = np.linspace(allv.min(), allv.max() + 1e-9, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, v in samples.items():
        ax.hist(v, bins=edges, density=True, histtype="step", lw=1.3,
                label=f"{label} (mean {np.mean(v):.3f})")
    ax.set_xlabel("density (g/cm³)")
    ax.set_ylabel("probability density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def stability_timeline(runs: dict[str, float], path: str | Path, t_max_ps: float | None = None,
                       reasons: dict[str, str] | None = None, title: str = "") -> Path:
    """Horizontal bars of t_stab (ps) per run; runs that reached ``t_max_ps`` drawn green."""
    labels = list(runs)
    vals = np.array([runs[k] for k in labels], dtype=float)
    t_max = t_max_ps or (float(vals.max()) if len(vals) else 1.0)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(labels) + 1.2))
    colors = ["tab:green" if v >= t_max else "tab:red" for v in vals]
    ax.barh(labels, vals, color=colors)
    for y, (k, v) in enumerate(zip(labels, vals, strict=True)):
        note = (reasons or {}).get(k)
        if note:
            ax.text(v, y, f" {note}", va="center", fontsize=7)
    ax.axvline(t_max, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("t_stab (ps)")
    ax.set_title(title)
    return _save(fig, path)


def occupancy_projections(density: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Occupancy density summed along each fractional axis: three 2-D maps (bc, ac, ab)."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    names = ("b", "c"), ("a", "c"), ("a", "b")
    for ax, axis, (x, y) in zip(axes, range(3), names, strict=True):
        proj = density.sum(axis=axis)
        ax.imshow(proj.T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis", aspect="auto")
        ax.set_xlabel(f"fractional {x}")
        ax.set_ylabel(f"fractional {y}")
    fig.suptitle(title)
    return _save(fig, path)
