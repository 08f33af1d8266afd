"""Training configuration: a YAML file validated by pydantic. Unknown keys are errors that
name the file and the key (``config.yaml: training.lerning_rate: unknown key 'lerning_rate'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from potlab.errors import InputError
from potlab.strict import StrictModel as _Strict
from potlab.strict import format_validation_error, read_yaml_mapping


class OutlierConfig(_Strict):
    threshold: float = 8.0  # robust z-score (median / MAD)
    drop: bool = False


class DataConfig(_Strict):
    train: str | list[str]
    valid: str | list[str] | None = None
    test: str | list[str] | None = None
    energy_key: str = "REF_energy"
    forces_key: str = "REF_forces"
    stress_key: str = "REF_stress"
    config_type_key: str = "config_type"
    #: read frames lazily from HDF5 / ASE db (graphs built on the fly in DataLoader
    #: workers, only indices and counts in memory); null: lazy when every file is .h5/.db
    #: and together they hold >= 200,000 frames or 2 GiB (potlab.data.open_frames)
    lazy: bool | None = None
    split: Literal["random", "subset", "file"] = "random"
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    valid_subsets: list[str] = Field(default_factory=list)
    split_file: str | None = None
    subset_weights: dict[str, float] = Field(default_factory=dict)  # per-subset loss weights
    subset_fractions: dict[str, float] = Field(default_factory=dict)  # share of sampled frames per subset (seed 003)
    e0: Literal["auto", "isolated", "fit"] | dict[str, float] = "auto"
    outliers: OutlierConfig | None = None

    @model_validator(mode="after")
    def _split_needs(self):
        if self.split == "file" and not self.split_file:
            raise ValueError("data.split_file is required when data.split is 'file'")
        if self.split == "subset" and not self.valid_subsets:
            raise ValueError("data.valid_subsets is required when data.split is 'subset'")
        return self


class TrainingConfig(_Strict):
    seed: int = 0
    max_time: float | None = None  # seconds on the budget clock (summed over resumes)
    # "wall": elapsed time; "cpu": this process's CPU time, so that runs sharing a busy
    # machine still get equal compute (benchmarks comparing architectures use it)
    budget_clock: Literal["wall", "cpu"] = "wall"
    #: DataLoader worker processes that batch lazy data (data.lazy); in-memory data is
    #: batched in the training process
    num_workers: int = Field(2, ge=0)
    max_epochs: int = 1000
    batch_size: int = 4
    valid_batch_size: int = 16
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    stress_weight: float = 0.0
    beta: float | None = Field(None, ge=0.0, le=1.0)  # seed 004: (1-beta) E + beta F
    energy_loss: Literal["per_atom", "total"] = "per_atom"
    #: plateau: ReduceLROnPlateau on the validation loss; cosine: lr to min_lr along half
    #: a cosine over the budget spent (max_time on the budget clock, or max_epochs);
    #: see potlab.train.schedule
    scheduler: Literal["plateau", "cosine"] = "plateau"
    scheduler_patience: int = 5  # plateau: epochs without improvement before the LR drops
    #: cosine: the rate rises linearly to lr over this many optimizer steps first (a
    #: continued model is not thrown off its minimum by Adam's first steps)
    scheduler_warmup_steps: int = Field(0, ge=0)
    scheduler_factor: float = 0.8
    min_lr: float = 1e-6
    ema_decay: float | None = 0.99
    refit_e0: bool = True  # seed 004: least-squares E0 correction of the best model at the end
    #: a potlab model file to continue from: its weights, E0, shift and scale replace the
    #: fresh ones (same architecture and elements; DP-GEN's ``training_init_model``)
    init_model: str | None = None
    clip_grad: float | None = 10.0
    early_stopping_patience: int | None = 50
    dtype: Literal["float32", "float64"] = "float32"
    threads: int | None = None
    # auto: a CUDA GPU when present, else the CPU; with several processes (DDP) each
    # process takes the GPU of its local rank
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        from potlab.devices import check_device_name

        return check_device_name(v)

    @model_validator(mode="after")
    def _warmup_is_cosine(self):
        if self.scheduler_warmup_steps and self.scheduler != "cosine":
            raise ValueError("scheduler_warmup_steps needs scheduler: cosine")
        return self

    @model_validator(mode="after")
    def _beta(self):
        if self.beta is not None:
            self.energy_weight = 1.0 - self.beta
            self.forces_weight = self.beta
        return self


class ModelSection(BaseModel):
    """``name`` plus the architecture's own hyper-parameters (validated by its Config)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @field_validator("name")
    @classmethod
    def _known(cls, v):
        from potlab.models import available

        if v not in available():
            raise ValueError(f"unknown architecture {v!r}; available: {', '.join(available())}")
        return v

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CommitteeConfig(_Strict):
    """``committee: 5`` or ``committee: {size: 5, split: inherited, inherit_from: DIR}``.

    Member ``m`` trains with seed ``training.seed + m`` in ``out/member_<m>``. Splits
    (seed 002): ``fresh`` draws a new random train/validation split per member; ``same``
    gives every member member 0's split; ``inherited`` takes the split of the best member
    (lowest force MAE on its whole data set) of the committee in ``inherit_from`` and
    spreads only the frames added since then at random (without ``inherit_from`` it is
    ``fresh``).
    """

    size: int = Field(ge=2)
    split: Literal["fresh", "same", "inherited"] = "fresh"
    inherit_from: str | None = None
    #: a committee directory: member ``m`` continues from its ``member_<m>/model.pt``
    #: (``training.init_model`` per member; an active-learning iteration's warm start)
    init_from: str | None = None
    workers: int = Field(1, ge=1)  # members trained at once (local processes, 1 thread each)


class TrainConfig(_Strict):
    data: DataConfig
    model: ModelSection
    training: TrainingConfig = TrainingConfig()
    committee: CommitteeConfig | None = None
    out: str = "runs/train"

    @field_validator("committee", mode="before")
    @classmethod
    def _committee_size(cls, v):
        return {"size": v} if isinstance(v, int) else v

    @model_validator(mode="after")
    def _model_params(self):
        from potlab.models.registry import model_config

        model_config(self.model.name, self.model.params())  # raises naming model.<key>
        return self


class ConfigError(InputError):
    """A configuration problem; the message names the file and the key."""


def parse_config(raw: dict[str, Any], source: str = "<config>", base: Path | None = None) -> TrainConfig:
    """Validate a config dict; relative data paths are resolved against ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        cfg = TrainConfig(**raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
    except ValueError as err:  # from the model's own Config
        raise ConfigError(f"{source}: {err}") from None
    if base is not None:
        d = cfg.data

        def res(p):
            if p is None:
                return None
            if isinstance(p, list):
                return [res(x) for x in p]
            q = Path(p)
            return str(q if q.is_absolute() else (base / q))

        d.train, d.valid, d.test, d.split_file = res(d.train), res(d.valid), res(d.test), res(d.split_file)
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML training config. Paths in ``data`` are relative to the
    current directory (as for MACE's and NequIP's command lines)."""
    path = Path(path)
    return parse_config(read_yaml_mapping(path, ConfigError), source=str(path))
