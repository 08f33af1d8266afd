"""Training data as tensors: labelled frames -> per-frame graphs (built once; training
frames do not move) and label tensors, batched by index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from potlab import data as pdata
from potlab.graph import GraphBatch, build_graph, collate


@dataclass
class Prepared:
    """Frames turned into graphs and label tensors, ready for batching."""

    frames: list[Atoms]
    graphs: list[GraphBatch]
    energy: torch.Tensor  # [n_frames] eV
    forces: list[torch.Tensor]  # per frame [n_i, 3] eV/A
    stress: torch.Tensor  # [n_frames, 3, 3] eV/A^3
    has_stress: torch.Tensor  # [n_frames] bool
    weight: torch.Tensor  # [n_frames]

    def batch(self, idx) -> tuple[GraphBatch, dict[str, torch.Tensor]]:
        g = collate([self.graphs[i] for i in idx])
        ref = {
            "energy": self.energy[idx],
            "forces": torch.cat([self.forces[i] for i in idx]),
            "stress": self.stress[idx],
            "has_stress": self.has_stress[idx],
            "weight": self.weight[idx],
            "n_atoms": g.n_atoms,
            "batch": g.batch,
        }
        return g, ref


def prepare(frames: list[Atoms], cutoff: float, dtype: torch.dtype, weights: np.ndarray) -> Prepared:
    """Neighbour graphs (computed once: training frames do not move) and labels."""
    from ase.stress import voigt_6_to_full_3x3_stress

    graphs = [build_graph([a], cutoff, dtype) for a in frames]
    stress = np.zeros((len(frames), 3, 3))
    has = np.zeros(len(frames), dtype=bool)
    for k, a in enumerate(frames):
        s = a.info.get(pdata.REF_STRESS_KEY)
        if s is not None:
            stress[k] = voigt_6_to_full_3x3_stress(np.asarray(s))
            has[k] = True
    return Prepared(
        frames=frames,
        graphs=graphs,
        energy=torch.tensor([a.info[pdata.REF_ENERGY_KEY] for a in frames], dtype=dtype),
        forces=[torch.as_tensor(a.arrays[pdata.REF_FORCES_KEY], dtype=dtype) for a in frames],
        stress=torch.as_tensor(stress, dtype=dtype),
        has_stress=torch.as_tensor(has),
        weight=torch.as_tensor(np.asarray(weights, dtype=float), dtype=dtype),
    )


def read_labelled(paths, d) -> list[Atoms]:
    """Frames of one or several files, labels read with the keys of the data config ``d``.
    A file without frames is a DataError naming it."""
    paths = [paths] if isinstance(paths, str) else list(paths or [])
    frames: list[Atoms] = []
    for p in paths:
        got = pdata.read_frames(
            p, energy_key=d.energy_key, forces_key=d.forces_key, stress_key=d.stress_key,
            config_type_key=d.config_type_key,
        )
        if not got:
            raise pdata.DataError(p, "no frames (the file is empty)")
        frames.extend(got)
    return frames


def read_training_frames(d, out=None) -> tuple[list[Atoms], list[int]]:
    """The training frames as read (``data.train``) and the indices of those that
    ``data.outliers`` drops (sorted; empty without ``drop: true``). With ``out`` the
    screening report is written to ``out/outliers.json``.

    Splits index the frames as read; dropped frames are then left out of every part
    (:meth:`potlab.data.Split.without`), so a split stays valid whatever is dropped.
    """
    import json

    from potlab.atomic import write_text_atomic

    frames = read_labelled(d.train, d)
    if d.outliers is None:
        return frames, []
    rep = pdata.screen_outliers(frames, threshold=d.outliers.threshold)
    if out is not None:
        write_text_atomic(json.dumps(rep.to_dict(), indent=1), Path(out) / "outliers.json")
    return frames, (list(rep.indices) if d.outliers.drop else [])
