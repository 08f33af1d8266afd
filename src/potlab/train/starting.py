"""Where a training run starts and how its best model is finished, besides the loop:
``training.init_model`` (continue from a potlab model file), the starting model's output
statistics (E0, shift and scale: from that file, or from a mace-torch ``init_from``), and
the E0 refit of the best model on its training residuals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from potlab import data as pdata
from potlab.potential import Potential, load
from potlab.train.config import ConfigError
from potlab.train.prepared import energy_residuals


def continue_from(path: str, like: Potential, device, dtype) -> Potential:
    """The potential of model file ``path``, on ``device`` in ``dtype``, to continue
    training from; its architecture, elements and model parameters must be ``like``'s."""
    if not Path(path).exists():
        raise ConfigError(f"training.init_model: {path}: no such model file")
    old = load(path, device=device)
    new = like.spec()
    if not isinstance(old, Potential) or old.spec()["model_name"] != new["model_name"]:
        raise ConfigError(f"training.init_model: {path} is not a {new['model_name']} potential")
    for key in ("elements", "model_params"):
        if old.spec()[key] != new[key]:
            raise ConfigError(f"training.init_model: {path}: its {key} differ from this "
                              f"config's ({old.spec()[key]} vs {new[key]})")
    return old.to(device=device, dtype=dtype)


def take_output_statistics(potential: Potential) -> tuple[pdata.E0Fit, float, float]:
    """(E0, shift, scale) the run keeps: a model built from a mace-torch file
    (``model.initial_output``) has them written into ``potential`` first; otherwise the
    potential's own (a model continued from a file)."""
    init = getattr(potential.model, "initial_output", None)
    if init is not None:
        with torch.no_grad():
            for z, e in init["e0"].items():
                potential.e0_table[z] = e
            potential.shift.fill_(init["shift"])
            potential.scale.fill_(init["scale"])
        return pdata.e0_from_dict(init["e0"]), float(init["shift"]), float(init["scale"])
    return pdata.e0_from_dict(potential.e0), float(potential.shift), float(potential.scale)


def refit_e0(path: Path, train_data, batch_size: int, device) -> dict[str, Any]:
    """Correct the saved model's per-element energies by least squares on its training
    residuals (seed 004 eq. 11 and its fix): with forces weighted far above energies a
    model can end with an energy offset linear in the element counts, which no force
    sees. Done once per saved model; recorded in its metadata."""
    pot = load(path, device=device)
    if pot.metadata.get("e0_refit"):
        return pot.metadata["e0_refit"]
    # [n_frames] eV, [n_frames, n_elements]
    resid, counts = energy_residuals(pot, train_data, batch_size=batch_size)
    delta, *_ = np.linalg.lstsq(counts, resid, rcond=None)
    n = counts.sum(1)
    with torch.no_grad():
        for z, d in zip(pot.elements, delta):
            pot.e0_table[z] += float(d)
    info = {
        "delta_e0": {str(z): float(d) for z, d in zip(pot.elements, delta)},
        "train_energy_mae_mev_per_atom_before": float(np.abs(resid / n).mean() * 1000),
        "train_energy_mae_mev_per_atom_after": float(np.abs((resid - counts @ delta) / n).mean() * 1000),
        "train_energy_rmse_ev_before": float(np.sqrt((resid**2).mean())),
        "train_energy_rmse_ev_after": float(np.sqrt(((resid - counts @ delta) ** 2).mean())),
    }
    pot.save(path, metadata={"e0_refit": info})
    return info
