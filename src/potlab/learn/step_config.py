"""The sections of a learn config that set how an iteration judges its explorer run:
``score`` (which committee uncertainty), ``select`` (threshold, screen, count), ``augment``,
``measure`` (pulls a side for the tracked quantity) and ``convergence`` (when to stop).
:class:`potlab.learn.config.LearnConfig` holds them; the units are in each field's name."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from potlab.learn.uncertainty import MEASURES
from potlab.strict import StrictModel


class ScoreSpec(StrictModel):
    """Which committee uncertainty selection uses: ``energy_std`` (eV, seed 002),
    ``max_forces_var`` or ``mean_forces_var`` (eV^2/A^2, seed 003 uses the max), or, with a
    steered explorer, ``cv_force_std`` (eV/A: the spread of the members' tension along the
    pulled coordinate, the force whose integral is the barrier), and on how many processes
    the frames are scored."""

    measure: Literal[MEASURES] = "energy_std"  # potlab.learn.uncertainty.UNITS
    #: local processes that score the frames side by side, one thread each (the scores
    #: are the same number for number as one process's; a worker count, so it may change
    #: on a run under way)
    workers: int = Field(1, ge=1)


class CalibratedThresholdSpec(StrictModel):
    """Seed 002: mean + ``n_sigma`` standard deviations of the uncertainty over the frames
    of the explorer's first ``first_steps`` steps."""

    kind: Literal["calibrated"] = "calibrated"
    first_steps: int = Field(1000, ge=1)
    n_sigma: float = 3.0


class AbsoluteThresholdSpec(StrictModel):
    """A fixed threshold in the measure's unit (seed 003: 0.5 eV^2/A^2)."""

    kind: Literal["absolute"] = "absolute"
    value: float = Field(gt=0)


class SimilaritySpec(StrictModel):
    """Seed 002's screen: every two selected frames differ by at least ``min_cv_A`` in the
    collective variable (the spring length) and ``min_energy_kcal_mol`` in energy (the
    committee's mean); at most ``max_after_break`` frames after a bond broke."""

    enabled: bool = True
    min_cv_A: float = Field(0.01, ge=0)
    min_energy_kcal_mol: float = Field(1.0, ge=0)
    max_after_break: int | None = Field(50, ge=0)


class SelectSpec(StrictModel):
    """Frames above the threshold, screened, at most ``max_new_labels`` labels per
    iteration counting the augmented copies (seed 002: 150 = 50 frames x 3), never a frame
    already in the data or in the test set (the reference run's frames), never a fused frame (``min_distance_fraction``) nor one whose
    augmented copies could hold a pair under the labeller's 0.5 A. ``first_only`` (seed 003) takes only the first frame above the
    threshold per run, or the frame of largest uncertainty when none is."""

    threshold: CalibratedThresholdSpec | AbsoluteThresholdSpec = Field(
        default_factory=CalibratedThresholdSpec, discriminator="kind")
    similarity: SimilaritySpec = Field(default_factory=SimilaritySpec)
    max_new_labels: int = Field(150, ge=1)
    first_only: bool = False
    #: frames with two atoms closer than this fraction of their covalent radii sum (the
    #: fusion monitor's test) are never labelled: a collapsed frame of a poor model makes
    #: the reference fail (xTB: AtomsTooClose) or teaches nothing physical; null keeps them
    min_distance_fraction: float | None = Field(0.5, gt=0, lt=1)


class AugmentSpec(StrictModel):
    """Seed 002: ``copies`` copies of each selected frame with uniform noise of
    +-``amplitude_A`` on every coordinate."""

    copies: int = Field(2, ge=0)
    amplitude_A: float = Field(0.05, gt=0)
    seed: int = 0


class ConvergenceSpec(StrictModel):
    """Stop when the tracked quantity (the explorer's barrier) is within
    ``tolerance_kcal_mol`` of the reference for ``consecutive`` iterations in a row, when
    ``label_budget`` new labels have been made, after ``max_iterations`` committees, or when
    no scored frame's uncertainty exceeds ``uncertainty_below`` (None: not used)."""

    tolerance_kcal_mol: float | None = Field(1.0, gt=0)
    consecutive: int = Field(3, ge=1)
    max_iterations: int = Field(10, ge=1)
    label_budget: int | None = Field(None, ge=1)
    uncertainty_below: float | None = Field(None, gt=0)


class MeasureSpec(StrictModel):
    """How the tracked quantity (a steered explorer's barrier) is measured each iteration:
    ``repeats`` pulls a side (None: the explorer's own). More than the explorer's adds
    pulls with the next seeds (the best member's on the explorer's engine, in
    ``iter_NNN/measure``; the reference run pulls as many), and only the explorer's own
    are scored: one pull's barrier scatters with the initial velocities alone, so the
    error's standard error falls as 1/sqrt(repeats) without scoring or labelling more."""

    repeats: int | None = Field(None, ge=1)
