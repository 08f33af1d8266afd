"""Robust screening for bad reference labels (SCF failures, unit slips, broken geometries).

Two per-frame statistics are screened with a robust z-score,
``z = (x - median) / (1.4826 * MAD)``: the largest atomic force norm (eV/Å) and the
energy per atom after subtracting the E0 sum (eV/atom). A few corrupt frames cannot move
the median or MAD, so they stand out (seed 004 found 0.4% of SPICE with force residuals
above 8 eV/Å).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from potlab.data.e0 import E0Fit, apply_e0, e0_from_dict, fit_e0
from potlab.data.keys import REF_ENERGY_KEY, REF_FORCES_KEY

log = logging.getLogger("potlab.data")

#: MAD of a normal distribution times this is its standard deviation.
MAD_TO_SIGMA = 1.4826
#: Mean absolute deviation of a normal distribution times this is its standard deviation.
MEANAD_TO_SIGMA = 1.2533


@dataclass
class OutlierReport:
    """Result of :func:`screen_outliers`.

    Attributes
    ----------
    indices: flagged frame positions (in the screened list), sorted.
    reasons: flagged index -> reasons, each ``"forces"`` or ``"energy_per_atom"``.
    stats: per-frame arrays, shape (n_frames,): ``max_force`` (eV/Å), ``energy_per_atom``
        (eV/atom, E0 subtracted), ``z_max_force``, ``z_energy_per_atom`` (NaN where not
        available), plus ``median_*`` and ``scale_*`` floats and the ``threshold``.
    n_frames: number of frames screened.
    """

    indices: list[int]
    reasons: dict[int, list[str]]
    stats: dict[str, np.ndarray | float]
    n_frames: int
    e0: E0Fit | None = None
    threshold: float = 8.0
    max_force: float | None = None

    @property
    def fraction(self) -> float:
        """Fraction of frames flagged."""
        return len(self.indices) / self.n_frames if self.n_frames else 0.0

    def to_dict(self) -> dict:
        """JSON-able summary: flagged frames with reasons and values, and the settings."""

        def plain(v):
            if isinstance(v, np.ndarray):
                return [None if np.isnan(x) else float(x) for x in v]
            return None if v is None or np.isnan(v) else float(v)

        return {
            "n_frames": self.n_frames,
            "n_flagged": len(self.indices),
            "fraction": self.fraction,
            "threshold": self.threshold,
            "max_force": self.max_force,
            "indices": list(self.indices),
            "reasons": {str(i): list(r) for i, r in self.reasons.items()},
            "stats": {k: plain(v) for k, v in self.stats.items()},
            "e0": None if self.e0 is None else self.e0.to_dict(),
        }

    def table(self, max_rows: int = 20) -> str:
        """A short human-readable table of flagged frames (at most ``max_rows``)."""
        lines = [
            f"{len(self.indices)} of {self.n_frames} frames flagged ({100 * self.fraction:.2f}%)"
            f", robust z > {self.threshold:g}"
            + ("" if self.max_force is None else f" or |F| > {self.max_force:g} eV/Å")
        ]
        if self.indices:
            lines.append(
                f"{'frame':>7}  {'max |F| eV/Å':>13}  {'z':>7}  {'E/atom eV':>11}  {'z':>7}  reasons"
            )
        for i in self.indices[:max_rows]:
            s = self.stats
            lines.append(
                f"{i:>7}  {s['max_force'][i]:>13.4g}  {s['z_max_force'][i]:>7.1f}  "
                f"{s['energy_per_atom'][i]:>11.5g}  {s['z_energy_per_atom'][i]:>7.1f}  "
                + ", ".join(self.reasons[i])
            )
        if len(self.indices) > max_rows:
            lines.append(f"... and {len(self.indices) - max_rows} more")
        return "\n".join(lines)


def robust_z(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Robust z-scores ``(x - median) / scale`` of the finite entries of ``x`` (NaN
    elsewhere), with ``scale = 1.4826 * MAD``, or ``1.2533 * mean absolute deviation``
    when the MAD is 0 (over half the values equal). All-equal values give z = 0.

    Returns (z, median, scale).
    """
    x = np.asarray(x, dtype=float)
    z = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if not ok.any():
        return z, float("nan"), float("nan")
    median = float(np.median(x[ok]))
    deviation = np.abs(x[ok] - median)
    scale = MAD_TO_SIGMA * float(np.median(deviation))
    if scale == 0.0:
        scale = MEANAD_TO_SIGMA * float(np.mean(deviation))
    z[ok] = 0.0 if scale == 0.0 else (x[ok] - median) / scale
    return z, median, scale


def screen_outliers(
    frames: Sequence[Atoms],
    *,
    e0: E0Fit | Mapping[int, float] | None = None,
    threshold: float = 8.0,
    max_force: float | None = None,
) -> OutlierReport:
    """Flag frames whose forces or energy per atom are far from the bulk of the data.

    Statistics per frame: the largest atomic force norm ``max |F_i|`` (eV/Å), and
    ``(E - sum E0) / n_atoms`` (eV/atom). A frame is flagged for ``"forces"`` when the
    robust z of its max force exceeds ``threshold`` (one-sided: small forces are never
    wrong, and a relaxed structure must not be flagged), or when ``max_force`` is given and
    exceeded; for ``"energy_per_atom"`` when ``|z|`` exceeds ``threshold``. Single-atom
    frames are left out of the energy statistic (they define E0, so they sit at 0 eV/atom
    while everything else carries its cohesive energy).

    Parameters
    ----------
    frames: labelled frames (``REF_energy``, ``REF_forces``; a missing label skips that
        statistic for the frame).
    e0: reference energies; fitted with :func:`fit_e0` when None.
    threshold: robust z-score above which a frame is flagged.
    max_force: optional absolute cap on any atomic force norm, eV/Å.
    """
    n = len(frames)
    if getattr(frames, "lazy", False):
        max_f, e_per_atom, fit = _statistics_streaming(frames, e0)
    else:
        max_f, e_per_atom, fit = _statistics(frames, e0)

    z_f, med_f, scale_f = robust_z(max_f)
    z_e, med_e, scale_e = robust_z(e_per_atom)
    reasons: dict[int, list[str]] = {}
    for i in range(n):
        r = []
        if (np.isfinite(z_f[i]) and z_f[i] > threshold) or (
            max_force is not None and np.isfinite(max_f[i]) and max_f[i] > max_force
        ):
            r.append("forces")
        if np.isfinite(z_e[i]) and abs(z_e[i]) > threshold:
            r.append("energy_per_atom")
        if r:
            reasons[i] = r
    report = OutlierReport(
        indices=sorted(reasons),
        reasons=reasons,
        stats={
            "max_force": max_f,
            "energy_per_atom": e_per_atom,
            "z_max_force": z_f,
            "z_energy_per_atom": z_e,
            "median_max_force": med_f,
            "scale_max_force": scale_f,
            "median_energy_per_atom": med_e,
            "scale_energy_per_atom": scale_e,
        },
        n_frames=n,
        e0=fit,
        threshold=threshold,
        max_force=max_force,
    )
    log.info("outlier screen: %d of %d frames flagged", len(report.indices), n)
    return report


def _statistics(frames: Sequence[Atoms], e0) -> tuple[np.ndarray, np.ndarray, E0Fit | None]:
    """Per frame: max atomic force norm (eV/A) and E0-subtracted energy per atom."""
    n = len(frames)
    max_f = np.full(n, np.nan)
    for i, atoms in enumerate(frames):
        forces = atoms.arrays.get(REF_FORCES_KEY)
        if forces is not None and len(atoms):
            max_f[i] = float(np.linalg.norm(np.asarray(forces), axis=1).max())

    has_energy = [i for i, a in enumerate(frames) if REF_ENERGY_KEY in a.info]
    e_per_atom = np.full(n, np.nan)
    fit: E0Fit | None = None
    if has_energy:
        with_energy = [frames[i] for i in has_energy]
        if e0 is None:
            fit = fit_e0(with_energy)
        else:
            fit = e0 if isinstance(e0, E0Fit) else e0_from_dict(e0)
        baseline = apply_e0(with_energy, fit)
        for j, i in enumerate(has_energy):
            if len(frames[i]) > 1:
                energy = float(frames[i].info[REF_ENERGY_KEY])
                e_per_atom[i] = (energy - baseline[j]) / len(frames[i])
    return max_f, e_per_atom, fit


def _statistics_streaming(frames, e0) -> tuple[np.ndarray, np.ndarray, E0Fit | None]:
    """:func:`_statistics` of a LazyFrames: one pass over the file in chunks (every frame
    has an energy and forces: the lazy sources require them)."""
    from potlab.data.e0 import composition_counts, fit_e0_streaming

    n = len(frames)
    max_f, energy = np.full(n, np.nan), np.full(n, np.nan)
    for pos in frames.chunks():
        for k, atoms in zip(pos.tolist(), frames.read(pos)):
            energy[k] = float(atoms.info[REF_ENERGY_KEY])
            max_f[k] = float(np.linalg.norm(atoms.arrays[REF_FORCES_KEY], axis=1).max())
    if e0 is None:
        fit = fit_e0_streaming(frames, energies=energy)
    else:
        fit = e0 if isinstance(e0, E0Fit) else e0_from_dict(e0)
    z = sorted(fit.energies)
    missing = sorted(set(frames.elements) - set(z))
    if missing:
        raise ValueError(f"no E0 for element(s) Z={missing}; E0 is known for Z={z}")
    table = composition_counts(frames.compositions, z) @ np.array([fit.energies[k] for k in z])
    n_atoms = frames.n_atoms.astype(float)
    e_per_atom = np.where(n_atoms > 1, (energy - table[frames.comp]) / n_atoms, np.nan)
    return max_f, e_per_atom, fit


def drop_outliers(frames: Sequence[Atoms], report: OutlierReport) -> list[Atoms]:
    """The frames not flagged in ``report`` (which must come from these frames)."""
    if len(frames) != report.n_frames:
        raise ValueError(
            f"the report screened {report.n_frames} frames but {len(frames)} were given"
        )
    flagged = set(report.indices)
    return [atoms for i, atoms in enumerate(frames) if i not in flagged]
