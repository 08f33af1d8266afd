"""Seed 002's moving spring (:mod:`potlab.md.steered`) on a batch of replicas, for the
batched engine (:mod:`potlab.md.batched`): the mass-weighted centres of the two groups of
every replica at once, the tension ``k (L - r)``, its forces added to the model's and its
energy returned, as :class:`~potlab.md.steered.SteeredSpring` does for one ASE run; and
one ``steered_log.csv`` row per step with the trapezoidal work.

Per replica the spring's state is ``run.data["spring"]`` (``work_eV``, ``last`` (anchor,
tension) and ``rest_length_A``: what the checkpoint saves, the same dict as the ASE
engine's) and ``run.data["spring_now"]`` (anchor, length, tension at the last force call).
Units: A, eV, fs.
"""

from __future__ import annotations

import numpy as np
import torch

from potlab.md.engine import Run

_F64 = torch.float64


def _mic(r: Run, d: torch.Tensor) -> torch.Tensor:
    """Minimum-image ``d`` [k, 3] in a periodic replica's cell (as the ASE engine)."""
    if not r.data["pbc"].any():
        return d
    from ase.geometry import find_mic

    v = find_mic(d.cpu().numpy(), r.data["cell"], r.data["pbc"])[0]
    return torch.from_numpy(np.asarray(v)).to(d)


class BatchedSprings:
    """The protocol's ``steered`` spring on every replica of a group."""

    def __init__(self, steered, timestep_fs: float, device) -> None:
        self.s, self.dt_fs, self.device = steered, float(timestep_fs), device
        self._key: tuple | None = None
        self._idx: list[tuple[torch.Tensor, torch.Tensor]] = []

    def rest_length(self, r: Run) -> float:
        """The spring's length at time 0: the protocol's, else the start's centre distance."""
        if self.s.rest_length_A is not None:
            return float(self.s.rest_length_A)
        d = r.data
        cen = [(d["masses"][g] * d["pos"][g]).sum(0) / d["masses"][g].sum()
               for g in (list(self.s.group_a), list(self.s.group_b))]
        return float(torch.linalg.vector_norm(_mic(r, (cen[1] - cen[0])[None])[0]))

    def add(self, group: list[Run], pos: torch.Tensor, forces: torch.Tensor,
            steps: list[int]) -> np.ndarray:
        """Add each replica's spring forces to ``forces`` [n, 3] (in place) at ``steps``; keep
        its anchor, length and tension for the log; return its spring energies (eV)."""
        s, dev = self.s, self.device
        key = tuple(r.index for r in group)
        if key != self._key:  # atom rows of each replica's groups and their mass weights
            offsets = np.cumsum([0] + [len(r.data["species"]) for r in group])[:-1]
            m = torch.cat([r.data["masses"] for r in group])[:, 0]
            self._idx = []
            for g in (s.group_a, s.group_b):
                idx = torch.tensor(offsets[:, None] + np.asarray(g)[None, :], device=dev)
                self._idx.append((idx, m[idx] / m[idx].sum(dim=1, keepdim=True)))
            self._key = key
        (ia, wa), (ib, wb) = self._idx
        centres = [(w[..., None] * pos[i]).sum(dim=1) for i, w in ((ia, wa), (ib, wb))]
        d = centres[1] - centres[0]  # [R, 3], A
        if any(r.data["pbc"].any() for r in group):
            d = torch.cat([_mic(r, d[k:k + 1]) for k, r in enumerate(group)])
        length = torch.linalg.vector_norm(d, dim=1)
        anchor = torch.tensor([r.data["spring"]["rest_length_A"] for r in group], dtype=_F64,
                              device=dev)
        anchor = anchor + s.velocity_A_ps / 1000.0 * self.dt_fs * torch.tensor(
            steps, dtype=_F64, device=dev)
        unit = torch.where(length[:, None] > 0, d / length.clamp_min(1e-300)[:, None], 0.0)
        pull = s.k_eV_A2 * (length - anchor)[:, None] * unit  # dU/d(centre_b), eV/A
        forces.index_add_(0, ia.reshape(-1), (wa[..., None] * pull[:, None, :]).reshape(-1, 3))
        forces.index_add_(0, ib.reshape(-1), -(wb[..., None] * pull[:, None, :]).reshape(-1, 3))
        L, r_ = anchor.cpu().numpy(), length.cpu().numpy()
        for k, r in enumerate(group):
            r.data["spring_now"] = (float(L[k]), float(r_[k]), float(s.k_eV_A2 * (L[k] - r_[k])))
        return 0.5 * s.k_eV_A2 * (r_ - L) ** 2


def steer_row(r: Run, step: int, timestep_fs: float) -> dict[str, float]:
    """The ``steered_log.csv`` row of ``r`` at ``step`` (its forces just computed there): the
    work integrates f dL by the trapezoidal rule, as SteeredSpring.record."""
    sp = r.data["spring"]
    L, length, f = r.data["spring_now"]
    if sp["last"] is not None:
        L0, f0 = sp["last"]
        sp["work_eV"] += 0.5 * (f + f0) * (L - L0)
    sp["last"] = (L, f)
    return {"step": step, "time_ps": step * timestep_fs / 1000, "anchor_A": L,
            "spring_length_A": length, "spring_force_eV_A": f, "work_eV": sp["work_eV"]}
