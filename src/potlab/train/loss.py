"""Weighted energy / forces / stress loss (seed 000's 1:1000 and seed 004's beta form)."""

from __future__ import annotations

import torch


def loss_normalisers(ref: dict[str, torch.Tensor]) -> torch.Tensor:
    """The denominators of :func:`weighted_loss` for the frames of ``ref``: [3] = summed
    frame weights, summed atom weights, summed weights of frames with a stress label.

    Sums over frames, so the normalisers of a batch split over several processes are the
    sum of its parts' (all-reduced before the loss; see :mod:`potlab.train.distributed`).
    """
    w = ref["weight"]
    return torch.stack([w.sum(), w[ref["batch"]].sum(), (w * ref["has_stress"].to(w.dtype)).sum()])


def weighted_loss(
    pred: dict[str, torch.Tensor],
    ref: dict[str, torch.Tensor],
    *,
    energy_weight: float,
    forces_weight: float,
    stress_weight: float = 0.0,
    energy_loss: str = "per_atom",
    normalisers: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss = w_E <e^2> + w_F <|dF|^2>/3 + w_S <dS^2>, each mean weighted by frame weight.

    ``ref`` holds energy [n_frames] (eV), forces [n_atoms, 3], stress [n_frames, 3, 3],
    n_atoms [n_frames], batch [n_atoms], weight [n_frames], has_stress [n_frames].
    With ``energy_loss="per_atom"`` the energy error is divided by the atom count; with
    "total" and w_E = 1 - beta, w_F = beta this is seed 004's equation 10.

    ``normalisers`` ([3], :func:`loss_normalisers`) are the means' denominators; by default
    those of ``ref`` itself. A process holding one shard of a global batch passes the
    global batch's, so that the shards' losses (and gradients) sum to the batch's.
    """
    norm = loss_normalisers(ref) if normalisers is None else normalisers
    norm = norm.clamp_min(1e-12)
    w = ref["weight"]
    de = pred["energy"] - ref["energy"]
    if energy_loss == "per_atom":
        de = de / ref["n_atoms"].to(de.dtype)
    e_term = (w * de**2).sum() / norm[0]
    terms = {"energy": e_term}
    total = energy_weight * e_term
    if forces_weight > 0 and "forces" in pred:
        wa = w[ref["batch"]]
        f_term = (wa[:, None] * (pred["forces"] - ref["forces"]) ** 2).sum() / (3 * norm[1])
        terms["forces"] = f_term
        total = total + forces_weight * f_term
    if stress_weight > 0 and "stress" in pred:
        ws = w * ref["has_stress"].to(w.dtype)
        s_term = (ws[:, None, None] * (pred["stress"] - ref["stress"]) ** 2).sum() / (9 * norm[2])
        terms["stress"] = s_term
        total = total + stress_weight * s_term
    return total, terms
