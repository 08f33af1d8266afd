"""Active learning: train a committee -> explore with its best member (MD, steered MD) ->
score frames by committee uncertainty -> select (threshold, similarity screen, at most M,
never a frame already in the data or the test set) -> augment -> label -> merge -> check convergence, with an
append-only record of finished steps (a kill resumes the step in flight; nothing is
labelled twice). ``potlab learn CONFIG.yaml --out DIR``; the bundled ``hexane`` config is
seed 002's rare-event study."""

from potlab.learn.augment import UniformNoise
from potlab.learn.config import (
    LearnConfig,
    LearnConfigError,
    load_learn_config,
    parse_learn_config,
)
from potlab.learn.convergence import Convergence
from potlab.learn.explorers import Exploration, MDExplorer, SteeredExplorer, broken_bonds
from potlab.learn.labelling import LabelStep
from potlab.learn.loop import LearningLoop, LearnResult, run_learning
from potlab.learn.record import Record
from potlab.learn.selectors import (
    AboveThreshold,
    AbsoluteThreshold,
    CalibratedThreshold,
    FirstAbove,
    MaxCount,
    NotFused,
    NotInData,
    Pool,
    SimilarityScreen,
    select_frames,
)
from potlab.learn.status import learn_status
from potlab.learn.uncertainty import FrameScores, committee_scores, score_frames

__all__ = [
    "AboveThreshold",
    "AbsoluteThreshold",
    "CalibratedThreshold",
    "Convergence",
    "Exploration",
    "FirstAbove",
    "FrameScores",
    "LabelStep",
    "LearnConfig",
    "LearnConfigError",
    "LearnResult",
    "LearningLoop",
    "MDExplorer",
    "MaxCount",
    "NotFused",
    "NotInData",
    "Pool",
    "Record",
    "SimilarityScreen",
    "SteeredExplorer",
    "UniformNoise",
    "broken_bonds",
    "committee_scores",
    "learn_status",
    "load_learn_config",
    "parse_learn_config",
    "run_learning",
    "score_frames",
    "select_frames",
]
