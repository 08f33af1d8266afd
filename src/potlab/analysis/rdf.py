"""Radial distribution functions g(r) of trajectories, total or per element pair.

Pairs come from vesin's periodic neighbour list, so ``rmax`` may exceed half the width of a
small or skewed (triclinic) cell: every periodic image within ``rmax`` is counted, which the
minimum-image convention would miss. Frames without periodic boundaries are allowed.

Normalisation, per frame (then averaged over frames with equal weight)::

    g_AB(r) = V * n_AB(r) / (N_A * N_B * shell(r))

with ``n_AB(r)`` the number of ordered pairs (i in A, j in B, every periodic image of j, an
atom's own images included) whose distance falls in the bin at ``r``, and ``shell(r)`` the exact
``4/3 pi (r_hi^3 - r_lo^3)``. This is ASE's convention (``ase.geometry.rdf``), which counting
self-images makes exact for a one-atom crystal cell; for an ideal gas of N atoms it gives
(N - 1) / N below half the cell width. ``V`` is the cell volume; for a frame with no periodic
direction and no cell, the volume of the positions' bounding box.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from potlab.progress import progress


@dataclass
class RDF:
    """A radial distribution function.

    Attributes
    ----------
    r: bin centres, Angstrom, shape [bins]
    g: g(r), dimensionless, shape [bins]
    pair: ``"A-B"`` element pair, or None for the total g(r)
    n_frames: number of frames averaged
    edges: bin edges, Angstrom, shape [bins + 1]
    """

    r: np.ndarray
    g: np.ndarray
    pair: str | None = None
    n_frames: int = 0
    edges: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def as_dict(self) -> dict:
        """``{"r": [...], "g": [...], "pair": ..., "n_frames": ...}`` with plain lists."""
        return {
            "r": self.r.tolist(),
            "g": self.g.tolist(),
            "pair": self.pair,
            "n_frames": self.n_frames,
        }


def parse_pair(pair: str | tuple[str, str] | None) -> tuple[str, str] | None:
    """``"Li-S"`` or ``("Li", "S")`` -> ``("Li", "S")``; None stays None."""
    if pair is None:
        return None
    if isinstance(pair, str):
        parts = [p.strip() for p in pair.replace(",", "-").split("-")]
    else:
        parts = [str(p).strip() for p in pair]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"pair must look like 'Li-S', got {pair!r}")
    return parts[0], parts[1]


def _as_frames(frames) -> list[Atoms]:
    if isinstance(frames, Atoms):
        return [frames]
    if isinstance(frames, (str, os.PathLike)):
        from potlab.analysis.trajio import read_trajectory_frames

        return read_trajectory_frames(frames)
    return list(frames)


def _volume(atoms: Atoms) -> float:
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() or abs(atoms.cell.volume) > 1e-12:
        vol = abs(float(atoms.cell.volume))
        if vol > 1e-12:
            return vol
    pos = atoms.get_positions()
    ext = np.ptp(pos, axis=0) if len(pos) else np.zeros(3)
    ext = np.where(ext > 1e-6, ext, 1.0)
    return float(np.prod(ext))


def pair_distances(atoms: Atoms, rmax: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j, all periodic images) closer than ``rmax`` Angstrom.

    Returns ``(i, j, d)``: atom indices and distances in Angstrom (a half list: each
    unordered pair once per image, a self-image pair i == j included for small cells).
    """
    from vesin import NeighborList

    pbc = np.asarray(atoms.pbc, dtype=bool)
    pos = np.ascontiguousarray(atoms.get_positions(), dtype=np.float64)
    box = np.asarray(atoms.cell.array, dtype=np.float64)
    if not pbc.any():
        box = np.zeros((3, 3))
    elif abs(np.linalg.det(box)) < 1e-12:
        raise ValueError("periodic frame with a degenerate cell")
    nl = NeighborList(cutoff=float(rmax), full_list=False)
    periodic = bool(pbc.all()) if (pbc.all() or not pbc.any()) else pbc.tolist()
    i, j, d = nl.compute(points=pos, box=box, periodic=periodic, quantities="ijd")
    return np.asarray(i), np.asarray(j), np.asarray(d)


def rdf(
    frames,
    rmax: float = 6.0,
    bins: int = 200,
    pair: str | tuple[str, str] | None = None,
) -> RDF:
    """g(r) averaged over ``frames`` (an Atoms, a list of Atoms, or a trajectory path).

    Parameters
    ----------
    rmax: largest distance, Angstrom (may exceed half the cell width).
    bins: number of equal-width bins on [0, rmax].
    pair: ``"Li-S"`` for the partial g_LiS(r) (symmetric: same as ``"S-Li"``), None for total.
    """
    frames = _as_frames(frames)
    if not frames:
        raise ValueError("rdf: no frames")
    if rmax <= 0 or bins < 1:
        raise ValueError(f"rdf: rmax must be > 0 and bins >= 1, got {rmax}, {bins}")
    ab = parse_pair(pair)
    edges = np.linspace(0.0, float(rmax), int(bins) + 1)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g_sum = np.zeros(int(bins))
    used = 0
    for k, atoms in enumerate(progress(frames, desc="rdf", unit="frame")):
        sym = np.asarray(atoms.get_chemical_symbols())
        if ab is None:
            in_a = in_b = np.ones(len(atoms), dtype=bool)
        else:
            in_a, in_b = sym == ab[0], sym == ab[1]
        n_a, n_b = int(in_a.sum()), int(in_b.sum())
        n_pairs = n_a * n_b
        if n_pairs == 0:
            raise ValueError(
                f"rdf: frame {k}: field 'symbols': no {pair or 'atom'} pairs "
                f"(elements present: {sorted(set(sym.tolist()))})"
            )
        i, j, d = pair_distances(atoms, rmax)
        if ab is None:
            # a half list holds each unordered pair once; g counts ordered pairs
            w = np.full(len(d), 2.0)
            keep = w > 0
        else:
            # ordered pairs (i in A, j in B) plus (j in A, i in B); for A == B both hold
            w = (in_a[i] & in_b[j]).astype(float) + (in_a[j] & in_b[i]).astype(float)
            keep = w > 0
        counts, _ = np.histogram(d[keep], bins=edges, weights=w[keep])
        g_sum += _volume(atoms) * counts / (n_pairs * shell)
        used += 1
    r = 0.5 * (edges[1:] + edges[:-1])
    return RDF(r=r, g=g_sum / used, pair=None if ab is None else f"{ab[0]}-{ab[1]}",
               n_frames=used, edges=edges)


def rdf_error(r: np.ndarray, g_a: np.ndarray, g_b: np.ndarray) -> dict:
    """Difference between two g(r) on the same bins.

    Returns ``{"mean_abs": mean over bins of |g_a - g_b|`` (seed 000 calls a potential stable
    when this is < 0.02), ``"integral": integral of |g_a - g_b| dr`` in Angstrom (trapezoid rule,
    the MDsim convention), ``"max_abs": largest |g_a - g_b|}``.
    """
    r = np.asarray(r, dtype=float)
    g_a = np.asarray(g_a, dtype=float)
    g_b = np.asarray(g_b, dtype=float)
    if not (r.shape == g_a.shape == g_b.shape) or r.ndim != 1:
        raise ValueError(
            f"rdf_error: r, g_a, g_b need the same 1-D shape, got {r.shape}, {g_a.shape}, "
            f"{g_b.shape}"
        )
    diff = np.abs(g_a - g_b)
    return {
        "mean_abs": float(diff.mean()),
        "integral": float(np.trapezoid(diff, r)),
        "max_abs": float(diff.max()),
    }


def rdf_errors(reference: RDF, others: Iterable[RDF]) -> list[dict]:
    """:func:`rdf_error` of each RDF in ``others`` against ``reference`` (same bins)."""
    return [rdf_error(reference.r, o.g, reference.g) for o in others]
