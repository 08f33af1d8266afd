"""Training data as tensors: labelled frames -> per-frame graphs and label tensors,
batched by index.

Two kinds with one interface (``len``, ``batch(idx) -> (GraphBatch, labels)``):
:class:`Prepared` holds every graph in memory (built once; training frames do not move);
:class:`LazyPrepared` reads the frames of a batch from their file and builds the graphs
then (in DataLoader workers through :func:`potlab.data.loader.iter_batches`), keeping only
indices and weights. :func:`prepare` picks by the kind of frames; :func:`training_statistics`
computes the model's shift, scale and average neighbour count of either (streamed for the
lazy kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    lazy = False

    def __len__(self) -> int:
        return len(self.graphs)

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


@dataclass
class LazyPrepared:
    """Frames read from their file per batch (a :class:`~potlab.data.lazy.LazyFrames`),
    graphs built then: ``batch(idx)`` equals :meth:`Prepared.batch` of the same frames."""

    frames: Any  # LazyFrames
    cutoff: float
    dtype: torch.dtype
    weight: np.ndarray  # [n_frames]
    lazy = True

    def __len__(self) -> int:
        return len(self.frames)

    def batch(self, idx) -> tuple[GraphBatch, dict[str, torch.Tensor]]:
        idx = [int(i) for i in idx]
        frames = self.frames.read(idx)
        return _prepare_memory(frames, self.cutoff, self.dtype, self.weight[idx]).batch(
            list(range(len(idx))))


def prepare(frames, cutoff: float, dtype: torch.dtype, weights: np.ndarray) -> Prepared | LazyPrepared:
    """Training data of ``frames``: a :class:`Prepared` of a list (graphs computed once:
    training frames do not move), a :class:`LazyPrepared` of a LazyFrames."""
    if pdata.is_lazy(frames):
        return LazyPrepared(frames, float(cutoff), dtype, np.asarray(weights, dtype=float))
    return _prepare_memory(frames, cutoff, dtype, weights)


def _prepare_memory(frames: list[Atoms], cutoff: float, dtype: torch.dtype, weights) -> Prepared:
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


def read_labelled(paths, d, lazy: bool | None = False):
    """Frames of one or several files, labels read with the keys of the data config ``d``:
    a list, or a :class:`~potlab.data.lazy.LazyFrames` when ``lazy`` (``None``: chosen by
    size, see :func:`potlab.data.open_frames`). A file without frames is a DataError
    naming it."""
    return pdata.open_frames(paths, lazy=lazy, energy_key=d.energy_key, forces_key=d.forces_key,
                             stress_key=d.stress_key, config_type_key=d.config_type_key)


def read_training_frames(d, out=None, lazy: bool | None = False):
    """The training frames as read (``data.train``; lazily as :func:`read_labelled`), and
    the indices of those that ``data.outliers`` drops (sorted; empty without
    ``drop: true``; the screen streams over lazy frames). With ``out`` the screening
    report is written to ``out/outliers.json``.

    Splits index the frames as read; dropped frames are then left out of every part
    (:meth:`potlab.data.Split.without`), so a split stays valid whatever is dropped.
    """
    import json

    from potlab.atomic import write_text_atomic

    frames = read_labelled(d.train, d, lazy)
    if d.outliers is None:
        return frames, []
    rep = pdata.screen_outliers(frames, threshold=d.outliers.threshold)
    if out is not None:
        write_text_atomic(json.dumps(rep.to_dict(), indent=1), Path(out) / "outliers.json")
    return frames, (list(rep.indices) if d.outliers.drop else [])


@dataclass
class TrainingStatistics:
    """Data statistics for the model's output (as MACE does): ``shift`` the mean
    E0-subtracted energy per atom (eV/atom), ``scale`` the RMS force component (eV/A; the
    residual std without forces), ``avg_num_neighbors`` edges per atom."""

    shift: float
    scale: float
    avg_num_neighbors: float


def training_statistics(data: Prepared | LazyPrepared, e0: dict[int, float], *,
                        num_workers: int = 0, batch_size: int = 256) -> TrainingStatistics:
    """:class:`TrainingStatistics` of training data of either kind; a lazy one is
    streamed once in batches of ``batch_size`` (graphs built by ``num_workers`` DataLoader
    workers). Raises ValueError naming an element without E0."""
    from potlab.data.loader import iter_batches

    if not data.lazy:
        e0_sum = pdata.apply_e0(data.frames, e0)
        n = np.array([len(a) for a in data.frames], dtype=float)
        resid = (data.energy.double().numpy() - e0_sum) / n
        fcat = torch.cat(data.forces).double()
        f2, nf = float((fcat**2).sum()), fcat.numel()
        n_edges = sum(g.edge_index.shape[1] for g in data.graphs)
        n_nodes = sum(g.num_nodes for g in data.graphs)
    else:
        fr = data.frames
        z = sorted(e0)
        missing = sorted(set(fr.elements) - set(z))
        if missing:
            raise ValueError(f"no E0 for element(s) Z={missing}; E0 is known for Z={z}")
        table = pdata.composition_counts(fr.compositions, z) @ np.array([e0[k] for k in z])
        energy = np.empty(len(fr))
        f2, nf, n_edges, n_nodes, k = 0.0, 0, 0, 0, 0
        chunks = [c.tolist() for c in fr.chunks(batch_size)]
        for g, ref in iter_batches(data, chunks, num_workers):
            m = int(ref["energy"].shape[0])
            energy[k:k + m] = ref["energy"].double().numpy()
            f = ref["forces"].double()
            f2, nf = f2 + float((f**2).sum()), nf + f.numel()
            n_edges, n_nodes, k = n_edges + g.edge_index.shape[1], n_nodes + g.num_nodes, k + m
        n = fr.n_atoms.astype(float)
        resid = (energy - table[fr.comp]) / n
    shift = float(resid.mean())
    scale = float(np.sqrt(f2 / nf)) if nf else float(resid.std() or 1.0)
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    return TrainingStatistics(shift, scale, n_edges / max(1, n_nodes))


def energy_residuals(potential, data: Prepared | LazyPrepared, *, batch_size: int = 16,
                     num_workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reference minus predicted energy of every frame (eV, shape (n_frames,)) and the
    element counts of each frame over ``potential.elements`` (shape (n_frames,
    n_elements)): the inputs of the E0 refit, for either kind of data."""
    from potlab.data.loader import iter_batches
    from potlab.potential import predict_graphs

    if not data.lazy:
        graphs = [g.to(dtype=potential.dtype) for g in data.graphs]
        pred = predict_graphs(potential, graphs, batch_size=batch_size)
        counts = np.stack([np.bincount(g.species.numpy(), minlength=119)[potential.elements]
                           for g in data.graphs]).astype(float)
        return data.energy.double().numpy() - pred["energy"], counts
    chunks = [c.tolist() for c in data.frames.chunks(batch_size)]
    resid = []
    for g, ref in iter_batches(data, chunks, num_workers):
        with torch.no_grad():
            out = potential(g.to(dtype=potential.dtype), forces=False)
        resid.append(ref["energy"].double().numpy() - out["energy"].detach().double().cpu().numpy())
    fr = data.frames
    counts = pdata.composition_counts(fr.compositions, potential.elements)[fr.comp]
    return np.concatenate(resid) if resid else np.zeros(0), counts
