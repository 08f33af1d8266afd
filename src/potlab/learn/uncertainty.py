"""Committee uncertainty of explorer frames (query by committee; seeds 002 and 003).

For each frame: the standard deviation of the members' total energies (eV, seed 002's UQ),
the per-atom force variance ``var_i = (1/N) sum_m |F_m,i - mean_m F_m,i|^2`` (eV^2/A^2),
its maximum (seed 003's criterion) and its mean over atoms, the members' mean energy
(eV, what the similarity screen compares) and, for a steered explorer, the standard deviation
of the members' tension along the pulled coordinate (eV/A, :func:`potlab.md.steered.tension`:
the force the spring holds against, whose integral over the pull is the work a barrier is
read from; energy spread says little about it where a bond is about to break).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import pairwise

import numpy as np
from ase import Atoms

#: the measures and the unit of each (and of a threshold on it)
UNITS = {"energy_std": "eV", "max_forces_var": "eV^2/A^2", "mean_forces_var": "eV^2/A^2",
         "cv_force_std": "eV/A"}
MEASURES = tuple(UNITS)


@dataclass
class FrameScores:
    """Per-frame uncertainties; every array has shape [n_frames]."""

    energy_std: np.ndarray  # eV
    max_forces_var: np.ndarray  # eV^2/A^2
    mean_forces_var: np.ndarray  # eV^2/A^2
    energy_mean: np.ndarray  # eV
    cv_force_std: np.ndarray  # eV/A; NaN without pulled groups

    def measure(self, name: str) -> np.ndarray:
        if name not in MEASURES:
            raise ValueError(f"unknown uncertainty measure {name!r}; choose {', '.join(MEASURES)}")
        return getattr(self, name)


def committee_scores(committee, frames: Sequence[Atoms], batch_size: int = 16,
                     groups: tuple[Sequence[int], Sequence[int]] | None = None) -> FrameScores:
    """Evaluate ``committee`` (a :class:`potlab.potential.Committee`) on ``frames``;
    ``groups``: a steered explorer's (group_a, group_b), for ``cv_force_std``."""
    import torch

    from potlab.graph import build_graph
    from potlab.md.steered import tension

    e_std, f_max, f_mean, e_mean, t_std = [], [], [], [], []
    frames = list(frames)
    device = committee.e0_table.device
    for k in range(0, len(frames), batch_size):
        chunk = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in frames[k:k + batch_size]]
        batch = build_graph(chunk, committee.cutoff, dtype=committee.dtype).to(device)
        with torch.enable_grad():
            out = committee(batch, forces=True)
        energy = out["energy"].detach().double().cpu().numpy()  # [N, n_chunk]
        forces = out["forces"].detach().double().cpu().numpy()  # [N, n_atoms, 3]
        var = ((forces - forces.mean(axis=0)) ** 2).sum(axis=-1).mean(axis=0)  # [n_atoms]
        start = 0
        for j, a in enumerate(chunk):
            v = var[start:start + len(a)]
            start += len(a)
            e_std.append(energy[:, j].std())
            e_mean.append(energy[:, j].mean())
            f_max.append(v.max())
            f_mean.append(v.mean())
            t_std.append(np.nan if groups is None else
                         tension(a, forces[:, start - len(a):start], *groups).std())
    return FrameScores(np.array(e_std), np.array(f_max), np.array(f_mean), np.array(e_mean),
                       np.array(t_std))


def score_frames(committee_path: str, frames: Sequence[Atoms], *, workers: int = 1,
                 batch_size: int = 16,
                 groups: tuple[Sequence[int], Sequence[int]] | None = None) -> FrameScores:
    """:func:`committee_scores` of the committee saved at ``committee_path`` on ``frames``,
    on ``workers`` local processes of one thread each. The frames are cut into contiguous
    parts at whole batches of ``batch_size``, so every batch is the one a single process
    evaluates and the scores are the same number for number."""
    from potlab.executor import run_jobs

    frames = list(frames)
    n_batches = -(-len(frames) // batch_size)
    parts = max(1, min(int(workers), n_batches))
    edges = [batch_size * (n_batches * k // parts) for k in range(parts + 1)]
    jobs = [(str(committee_path), frames[a:b], batch_size, groups) for a, b in pairwise(edges)]
    scores = run_jobs(_score_part, jobs, workers=parts, desc="score",
                      worker_env={"OMP_NUM_THREADS": "1"})
    if len(scores) == 1:
        return scores[0]
    return FrameScores(*(np.concatenate([getattr(s, f.name) for s in scores])
                         for f in fields(FrameScores)))


def _score_part(job: tuple[str, list[Atoms], int, tuple | None]) -> FrameScores:
    """One part of :func:`score_frames` (module level: picklable)."""
    from threadpoolctl import threadpool_limits

    from potlab.potential.loading import load_committee

    path, frames, batch_size, groups = job
    with threadpool_limits(1):
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return committee_scores(load_committee(path, group=False), frames, batch_size, groups)
        finally:
            torch.set_num_threads(threads)  # a part run in the caller's process leaves it as it was
