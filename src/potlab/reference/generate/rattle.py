"""Rattled copies: random displacements of every atom, Gaussian or uniform.

Seed 002's augmentation is the uniform case: noise of +-0.05 A on each coordinate, a few
(two) copies per structure (:func:`augment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field


class RattleParams(BaseModel):
    """``copies`` per structure; ``distribution`` "gaussian" (standard deviation
    ``amplitude`` A per coordinate) or "uniform" (in [-amplitude, +amplitude] A)."""

    model_config = ConfigDict(extra="forbid")
    copies: int = Field(3, ge=1)
    amplitude: float = Field(0.05, gt=0, description="A")
    distribution: Literal["gaussian", "uniform"] = "gaussian"
    seed: int = 0
    config_type: str = "rattled"


def rattle(structures: Sequence[Atoms], params: RattleParams | None = None) -> list[Atoms]:
    """``params.copies`` displaced copies of each structure (in order); the cell is kept,
    labels and calculators are dropped, ``info["config_type"]`` is set."""
    p = params or RattleParams()
    rng = np.random.default_rng(p.seed)
    out = []
    for atoms in structures:
        for _ in range(p.copies):
            copy = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            for key in ("charge", "spin"):
                if key in atoms.info:
                    copy.info[key] = atoms.info[key]
            shape = atoms.positions.shape
            if p.distribution == "gaussian":
                copy.positions += rng.normal(0.0, p.amplitude, shape)
            else:
                copy.positions += rng.uniform(-p.amplitude, p.amplitude, shape)
            copy.info["config_type"] = p.config_type
            out.append(copy)
    return out


def augment(structures: Sequence[Atoms], copies: int = 2, amplitude: float = 0.05,
            seed: int = 0) -> list[Atoms]:
    """Seed 002's configuration augmentation: ``copies`` copies with uniform noise of
    +-``amplitude`` A on every coordinate."""
    return rattle(structures, RattleParams(copies=copies, amplitude=amplitude,
                                           distribution="uniform", seed=seed,
                                           config_type="augmented"))
