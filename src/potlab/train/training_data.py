"""A training run's data, from its config: read (lazily for large HDF5 / ASE db), split,
E0 fitted, weighted, prepared as graphs and labels, and the output statistics (shift,
scale, average neighbours) the model starts from. One function, :func:`build`, used by
:class:`potlab.train.trainer.Trainer` on every rank."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from potlab import data as pdata
from potlab.train.checkpoint import write_text_atomic
from potlab.train.config import ConfigError, TrainConfig
from potlab.train.prepared import (
    LazyPrepared,
    Prepared,
    prepare,
    read_labelled,
    read_training_frames,
    training_statistics,
)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainingData:
    """What :func:`build` returns: ``report`` (frames read and dropped), the ``split``,
    the E0 fit, the elements, the sampling probabilities (or None), the prepared train
    and validation data (``valid_data`` None off rank 0 or without validation frames),
    and the output statistics."""

    report: dict[str, Any]
    split: pdata.Split
    e0fit: Any
    elements: list[int]
    sampling: np.ndarray | None
    train_data: Prepared | LazyPrepared
    valid_data: Prepared | LazyPrepared | None
    shift: float
    scale: float
    avg_num_neighbors: float


def build(cfg: TrainConfig, out: Path, write: bool = True,
          split: pdata.Split | None = None) -> TrainingData:
    """The data of ``cfg`` for a run in ``out``. ``write`` (rank 0, or the one process)
    decides the split and writes ``split.json``, ``e0.json`` and ``outliers.json``; another
    rank passes rank 0's ``split`` and writes nothing. Bad data or settings raise
    :class:`~potlab.data.DataError` / :class:`~potlab.train.config.ConfigError`."""
    d, t = cfg.data, cfg.training
    frames, dropped = read_training_frames(d, out if write else None, lazy=d.lazy)
    report: dict[str, Any] = {"n_read": len(frames), "n_dropped": len(dropped)}
    valid_frames = read_labelled(d.valid, d, lazy=d.lazy) if d.valid else None
    split_path = out / "split.json"
    if split is not None:  # rank 0's
        pass
    elif split_path.exists():  # resumed run, or a committee member's given split
        split = pdata.check_split(pdata.Split.load(split_path), frames, split_path)
        if split.n_frames is None and dropped:
            raise pdata.DataError(split_path, "written by an older potlab that indexed the "
                                  "frames after the outlier drop; use a new run directory",
                                  field="n_frames")
    elif valid_frames is not None:
        split = pdata.Split(train=list(range(len(frames))), valid=[], strategy="valid_file", seed=t.seed)
    elif d.split == "random":
        split = pdata.random_split(len(frames), valid_fraction=d.valid_fraction, seed=t.seed)
    elif d.split == "subset":
        try:
            split = pdata.subset_split(frames, valid_subsets=d.valid_subsets)
        except ValueError as err:
            raise ConfigError(f"data.valid_subsets: {err}") from None
    else:
        split = pdata.split_from_file(d.split_file, len(frames))
    if write:
        split = split.describing(frames).without(dropped)
        split.save(split_path)

    train = pdata.take(frames, split.train)  # lazy frames: a view, nothing read
    valid = valid_frames if valid_frames is not None else pdata.take(frames, split.valid)
    if not train:
        raise ConfigError("data.train: no training frames after the split")
    # E0: given, from isolated atoms, or least squares (seed 004)
    if isinstance(d.e0, dict):
        e0fit = pdata.e0_from_dict(d.e0)
    else:
        e0fit = pdata.fit_e0(train)
        if d.e0 == "isolated" and "isolated" not in e0fit.method:
            raise ConfigError("data.e0: 'isolated' requested but no isolated-atom frames found")
    if write:
        write_text_atomic(json.dumps(e0fit.to_dict(), indent=1), out / "e0.json")
    elements = sorted(set(pdata.elements_of(frames, valid)) | set(e0fit.energies))
    try:
        weights = pdata.frame_weights(train, d.subset_weights) if d.subset_weights else np.ones(len(train))
    except ValueError as err:
        raise ConfigError(f"data.subset_weights: {err}") from None
    try:
        sampling = (pdata.sampling_probabilities(train, d.subset_fractions)
                    if d.subset_fractions else None)
    except ValueError as err:
        raise ConfigError(f"data.subset_fractions: {err}") from None
    dtype = DTYPES[t.dtype]
    from potlab.models.registry import model_config

    cutoff = model_config(cfg.model.name, cfg.model.params()).cutoff
    train_data = prepare(train, cutoff, dtype, weights)
    # only rank 0 validates
    valid_data = prepare(valid, cutoff, dtype, np.ones(len(valid))) if valid and write else None
    # data statistics for the model's output scale and shift (as MACE does), of either
    # kind of data (streamed over a lazy one)
    try:
        stats = training_statistics(train_data, e0fit.energies)
    except ValueError as err:
        raise ConfigError(f"data.e0: {err}") from None
    return TrainingData(report=report, split=split, e0fit=e0fit, elements=elements,
                        sampling=sampling, train_data=train_data, valid_data=valid_data,
                        shift=stats.shift, scale=stats.scale,
                        avg_num_neighbors=stats.avg_num_neighbors)
