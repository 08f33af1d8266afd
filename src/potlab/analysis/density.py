"""Density distributions from NPT runs and the Kullback-Leibler divergence between them.

Densities (g/cm^3) come from an MD log's ``density_g_cm3`` column or from frames (total mass /
cell volume, :func:`potlab.md.monitors.density_g_cm3`, the one helper for it).

Binning and smoothing of :func:`kl_divergence` (documented choice): both samples are histogrammed
on the same ``bins`` equal-width bins spanning the union of their ranges (or ``range``); each bin
gets a pseudo-count ``alpha`` (default 0.5, the Krichevsky-Trofimov / Jeffreys prior) before
normalising, so an empty bin has a small non-zero probability and D_KL stays finite.
``D_KL(P||Q) = sum_x P(x) ln(P(x)/Q(x))`` in nats; it is exactly 0 for identical samples and
positive otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from potlab.md.monitors import density_g_cm3


def densities_from_frames(frames: list[Atoms]) -> np.ndarray:
    """Mass density of each (periodic) frame, g/cm^3, [frames]."""
    return np.array([density_g_cm3(a) for a in frames])


def densities_from_log(path: str | os.PathLike[str], skip_ps: float = 0.0) -> np.ndarray:
    """The ``density_g_cm3`` column of an MD log after ``skip_ps`` ps (equilibration)."""
    from potlab.analysis.trajio import read_md_log

    log = read_md_log(path, required=("time_ps", "density_g_cm3"))
    keep = log["time_ps"] >= log["time_ps"][0] + skip_ps
    return log["density_g_cm3"][keep]


@dataclass
class Distribution:
    """A normalised histogram: ``edges`` [bins + 1] (g/cm^3), ``p`` [bins] summing to 1."""

    edges: np.ndarray
    p: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])


def common_edges(*samples: np.ndarray, bins: int = 40,
                 range: tuple[float, float] | None = None) -> np.ndarray:
    """``bins`` equal-width edges over the union of the samples' ranges (or ``range``)."""
    if range is None:
        lo = min(float(np.min(s)) for s in samples)
        hi = max(float(np.max(s)) for s in samples)
        if hi <= lo:
            lo, hi = lo - 0.5e-3, hi + 0.5e-3
        range = (lo, hi)
    return np.linspace(range[0], range[1], bins + 1)


def distribution(sample: np.ndarray, edges: np.ndarray, alpha: float = 0.5) -> Distribution:
    """Histogram of ``sample`` on ``edges`` with ``alpha`` pseudo-counts per bin, normalised."""
    sample = np.asarray(sample, dtype=float)
    if sample.size == 0:
        raise ValueError("distribution: empty sample")
    counts, _ = np.histogram(np.clip(sample, edges[0], edges[-1]), bins=edges)
    p = counts + alpha
    return Distribution(edges=np.asarray(edges), p=p / p.sum())


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """D_KL(p||q) in nats for probability vectors on the same bins (q > 0 where p > 0)."""
    from scipy.stats import entropy

    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if np.any(q[p > 0] <= 0):
        raise ValueError("kl: q is zero where p is not (smooth the histograms)")
    return float(entropy(p, q))  # sum p ln(p / q), nats


def kl_divergence(p_sample: np.ndarray, q_sample: np.ndarray, bins: int = 40,
                  range: tuple[float, float] | None = None,
                  alpha: float = 0.5) -> float:
    """D_KL(P||Q) (nats) between the distributions of two samples (binning in the module doc)."""
    edges = common_edges(p_sample, q_sample, bins=bins, range=range)
    return kl(distribution(p_sample, edges, alpha).p, distribution(q_sample, edges, alpha).p)
