"""Seed 003's quality score Q (its equation 1) for a committee of MLIPs.

Per committee member (all times in ps, ``t_ref`` = 1 ns)::

    Q = min(1, t_stab,NPT / t_ref)
      + H(t_stab,NPT - t_ref) * (1 - tanh(max(0, D_KL(P_ML || P_ref,av) - D_KL(P_ref,i || P_ref,j))))
      + H(t_stab,NVT - t_ref) * (1 - tanh(|D_ML - D_ref| / D_ref))

and the committee's Q is the mean over members (seed 003: "averaged across a committee"). Three
readings of the printed equation, which as typeset contradicts its own text: the first term is
printed ``max(1, ...)`` but "scales t_stab onto [0, 1]", so ``min``; the Heaviside factors are
printed ``H(1 ns - t_stab)`` but "ensure that only members ... sufficiently stable" count, so
``H(t_stab - 1 ns)`` (H(0) = 1: exactly 1 ns counts as stable); a divergence below the reference
pair's gives "a second term of 1", so the tanh argument is clipped at 0. Each term is in [0, 1],
Q in [0, 3].

``P_ref,av`` is the mean of the reference runs' normalised histograms; ``D_KL(P_ref,i||P_ref,j)``
is the mean over ordered pairs of distinct reference runs (0 with one reference run). All
histograms share one binning (see :mod:`potlab.analysis.density`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from potlab.analysis.density import common_edges, distribution, kl


@dataclass
class MemberRuns:
    """One committee member's results: stability times (ps), NPT densities (g/cm^3, after
    equilibration) and NVT centre-of-mass diffusivity (any unit, same as ``d_ref``)."""

    t_stab_npt_ps: float
    t_stab_nvt_ps: float
    densities: np.ndarray | None = None
    diffusivity: float | None = None


def quality_score(members: list[MemberRuns], ref_densities: list[np.ndarray], d_ref: float,
                  t_ref_ps: float = 1000.0, bins: int = 40, alpha: float = 0.5) -> dict:
    """Q of a committee and every member's three terms.

    Returns ``{"Q": mean, "Q_err": standard error over members, "members": [{"Q", "stability",
    "density", "diffusivity", "kl"}...], "kl_ref": D_KL between reference runs}``.
    """
    if not members:
        raise ValueError("quality_score: no committee members")
    if not ref_densities:
        raise ValueError("quality_score: need at least one reference density sample")
    samples = [np.asarray(r, dtype=float) for r in ref_densities]
    samples += [np.asarray(m.densities, dtype=float) for m in members if m.densities is not None]
    edges = common_edges(*samples, bins=bins)
    ref_p = [distribution(r, edges, alpha).p for r in ref_densities]
    p_ref_av = np.mean(ref_p, axis=0)
    pairs = list(permutations(range(len(ref_p)), 2))
    kl_ref = float(np.mean([kl(ref_p[i], ref_p[j]) for i, j in pairs])) if pairs else 0.0
    rows = []
    for k, m in enumerate(members):
        stab = min(1.0, m.t_stab_npt_ps / t_ref_ps)
        dens = 0.0
        kl_ml = None
        if m.t_stab_npt_ps >= t_ref_ps:
            if m.densities is None:
                raise ValueError(f"quality_score: member {k} is NPT-stable but has no densities")
            kl_ml = kl(distribution(m.densities, edges, alpha).p, p_ref_av)
            dens = 1.0 - np.tanh(max(0.0, kl_ml - kl_ref))
        diff = 0.0
        if m.t_stab_nvt_ps >= t_ref_ps:
            if m.diffusivity is None:
                raise ValueError(f"quality_score: member {k} is NVT-stable but has no diffusivity")
            diff = 1.0 - np.tanh(abs(m.diffusivity - d_ref) / d_ref)
        rows.append({"Q": stab + dens + diff, "stability": stab, "density": float(dens),
                     "diffusivity": float(diff), "kl": kl_ml})
    q = np.array([r["Q"] for r in rows])
    return {"Q": float(q.mean()),
            "Q_err": float(q.std(ddof=1) / np.sqrt(len(q))) if len(q) > 1 else None,
            "members": rows, "kl_ref": kl_ref}
