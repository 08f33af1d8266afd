"""Configuration augmentation (seed 002, 2.3.4): each selected frame plus ``copies`` copies
with uniform noise in [-amplitude, +amplitude] A on every coordinate, so that the model
learns the energy surface around the sampled path and not only points on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ase import Atoms


@dataclass(frozen=True)
class UniformNoise:
    """``copies`` noisy copies per frame (uniform +-``amplitude`` A), seeded."""

    copies: int = 2
    amplitude: float = 0.05
    seed: int = 0

    def __call__(self, frames: Sequence[Atoms]) -> list[Atoms]:
        """The frames (config_type ``selected``) followed, frame by frame, by their copies
        (config_type ``augmented``); labels and calculators are dropped."""
        from potlab.reference.generate.rattle import augment

        out: list[Atoms] = []
        noisy = augment(frames, copies=self.copies, amplitude=self.amplitude,
                        seed=self.seed) if self.copies else []
        for k, a in enumerate(frames):
            clean = Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc)
            for key in ("charge", "spin"):
                if key in a.info:
                    clean.info[key] = a.info[key]
            clean.info["config_type"] = "selected"
            out.append(clean)
            out.extend(noisy[k * self.copies:(k + 1) * self.copies])
        return out
