"""Training: config, loss, EMA, checkpoints and the Trainer loop."""

from potlab.train.committee import CommitteeResult, train_committee
from potlab.train.config import ConfigError, TrainConfig, load_config, parse_config
from potlab.train.trainer import Trainer, TrainingDiverged, TrainResult, train

__all__ = [
    "CommitteeResult",
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "load_config",
    "parse_config",
    "train",
    "train_committee",
]
