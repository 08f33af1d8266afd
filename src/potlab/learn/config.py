"""The active-learning configuration: one YAML file validated by pydantic (an unknown key is
an error naming it), with ``presets`` merged over it (``--preset quick``).

Sections (units: fs, K, A, eV, kcal/mol where the name says so)::

    name: hexane
    structure: {smiles: CCCCCC}            # or {file: start.xyz} (relative to the YAML)
    reference: {method: gfn2-xtb}          # what labels: potlab.reference.get_method
    relax: {steps: 2000, temperature_K: 10, timestep_fs: 0.5}   # reference MD before pulling
    initial_data: {md: {temperature_K: 500, steps: 4000, every: 2}}  # or {file: data.xyz}
    reference_run: {enabled: true, label_every: 10}  # the explorer's protocol with the reference
    train: {model: ..., training: ..., committee: {size: 3, split: inherited}}  # potlab train
    explore: {kind: steered, protocol: {...}}        # a potlab.md protocol
    score: {measure: energy_std}           # or max/mean_forces_var, cv_force_std (steered)
    select: {threshold: {kind: calibrated, first_steps: 1000, n_sigma: 3}, ...}
    augment: {copies: 2, amplitude_A: 0.05}
    measure: {repeats: 64}                 # pulls a side for the barrier (default: explorer's)
    convergence: {tolerance_kcal_mol: 1.0, consecutive: 3, max_iterations: 10, ...}
    assess:                                # what the loop does not need, judged after it
      members: true                        # every member's explorer run (committee spread)
      molecules: [{name: butane, smiles: CCCC, group_a: [0], group_b: [3]}]  # transfer
      architectures: [{name: schnet, train: {model: ..., training: ...}}]    # data transfer
    presets: {quick: {...partial config...}}
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from potlab.errors import InputError
from potlab.learn.step_config import (
    AugmentSpec,
    ConvergenceSpec,
    MeasureSpec,
    ScoreSpec,
    SelectSpec,
)
from potlab.strict import StrictModel, format_validation_error, read_yaml_mapping

BUNDLED = Path(__file__).parent


class LearnConfigError(InputError):
    """A problem with a ``potlab learn`` config; the message names the file and the key."""


class StructureSpec(StrictModel):
    """The starting structure: a file ``ase.io.read`` reads (relative to the YAML) or a
    SMILES string (one RDKit conformer, MMFF-relaxed)."""

    file: str | None = None
    smiles: str | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _one(self) -> StructureSpec:
        if (self.file is None) == (self.smiles is None):
            raise ValueError("give exactly one of structure.file and structure.smiles")
        return self


class ReferenceSpec(StrictModel):
    """The labelling method (``gfn2-xtb``, ``chgnet``, ``module:Class``...), its settings,
    and the local labelling processes (``--scheduler`` sends the jobs to Dask instead)."""

    method: str
    settings: dict[str, Any] = Field(default_factory=dict)
    workers: int = Field(1, ge=1)


class RelaxSpec(StrictModel):
    """Seed 002: relax at 10 K with the reference before pulling (seed 002 used Berendsen,
    the shipped study Langevin); 0 steps starts from the structure as given."""

    steps: int = Field(0, ge=0)
    temperature_K: float = Field(10.0, gt=0)
    timestep_fs: float = Field(0.5, gt=0)
    thermostat: Literal["langevin", "berendsen"] = "langevin"
    friction_per_fs: float = Field(0.01, gt=0)
    tdamp_fs: float = Field(100.0, gt=0)
    seed: int = 0


class InitialMD(StrictModel):
    """Reference NVT MD (seed 002: 2000 frames at 500 K, 0.5 fs): a ramp from ``start_K``
    over ``ramp_fs``, then ``steps`` steps keeping every ``every``-th frame with the labels
    the reference computed during the run."""

    temperature_K: float = Field(500.0, gt=0)
    steps: int = Field(4000, ge=1)
    every: int = Field(2, ge=1)
    timestep_fs: float = Field(0.5, gt=0)
    start_K: float = Field(100.0, gt=0)
    ramp_fs: float = Field(100.0, gt=0)
    seed: int = 0


class InitialData(StrictModel):
    """Labelled frames to start from: a file (REF_energy/REF_forces, relative to the YAML)
    or reference MD."""

    file: str | None = None
    md: InitialMD | None = None

    @model_validator(mode="after")
    def _one(self) -> InitialData:
        if (self.file is None) == (self.md is None):
            raise ValueError("give exactly one of initial_data.file and initial_data.md")
        return self


class ReferenceRun(StrictModel):
    """The explorer's protocol run once with the reference method: its frames (every
    ``label_every``-th stored frame, labelled) are the unseen test set and, for steered MD,
    its maximum work is the reference barrier. ``value_eV`` instead gives the reference
    value of the tracked quantity directly (no run)."""

    enabled: bool = True
    label_every: int = Field(1, ge=1)
    value_eV: float | None = None


class SteeredExplorer(StrictModel):
    """Steered MD (seed 002) with the committee's best member; ``protocol`` is a
    :class:`potlab.md.MDProtocol` with a ``steered`` section. Frames are stored (and later
    scored by the committee) every ``protocol.interval`` steps. Tracked quantity: the
    barrier (maximum work, eV)."""

    kind: Literal["steered"] = "steered"
    protocol: dict[str, Any]
    #: a bond present at the start counts as broken beyond this factor times its length
    break_factor: float = Field(1.6, gt=1.0)


class MDExplorer(StrictModel):
    """MD at one or more temperatures (any ensemble of :class:`potlab.md.MDProtocol`) with
    the best member. With ``stop_max_forces_var`` (seed 003: 0.5 eV^2/A^2) the committee is
    evaluated in the run every ``uq_every`` steps and the run stops at the first frame
    above it (the protocol's monitors stop it too: bonds, density)."""

    kind: Literal["md"] = "md"
    protocol: dict[str, Any]
    stop_max_forces_var: float | None = Field(None, gt=0)
    uq_every: int = Field(10, ge=1)
    break_factor: float = Field(1.6, gt=1.0)


class MoleculeSpec(StructureSpec):
    """A molecule the final model is pulled apart on (seed 002's transfer test): the
    explorer's steered protocol with the spring between ``group_a`` and ``group_b``, run
    with the final best member and with the reference; the barrier error in kcal/mol."""

    name: str
    group_a: list[int] = Field(min_length=1)
    group_b: list[int] = Field(min_length=1)
    #: the pull's length in steps (None: the explorer's): a folded conformer has to be
    #: pulled straight before any bond takes the load
    steps: int | None = Field(None, ge=1)


class ArchitectureSpec(StrictModel):
    """Another architecture trained on the data the loop selected (seed 003's question): a
    ``potlab train`` mapping without ``committee`` (``data.train`` is the final data); the
    model then runs the explorer's protocol and is scored on the reference frames."""

    name: str
    train: dict[str, Any]

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "committee" in v:
            raise ValueError("committee: one model per architecture (leave it out)")
        return check_train_section(v)


class AssessSpec(StrictModel):
    """Judgements the loop does not depend on, so they may be added to (or changed in) a
    run already under way: ``members`` runs the explorer with every committee member (the
    committee's spread of the tracked quantity) each iteration; ``molecules`` and
    ``architectures`` run once, after the loop stops, on its final committee and data."""

    members: bool = False
    molecules: list[MoleculeSpec] = Field(default_factory=list)
    architectures: list[ArchitectureSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> AssessSpec:
        for kind, items in (("molecules", self.molecules), ("architectures", self.architectures)):
            names = [m.name for m in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind}: names must be unique (got {', '.join(names)})")
        return self


def check_train_section(v: dict[str, Any]) -> dict[str, Any]:
    """A ``potlab train`` mapping whose data potlab learn fills in (no ``out``, no data
    paths or keys), validated as ``potlab train`` would."""
    from potlab.train.config import ConfigError, parse_config

    if "out" in v:
        raise ValueError("unknown key 'out' (potlab learn puts every model in its folder)")
    data = v.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError("data: expected a mapping")  # noqa: TRY004 - pydantic wants ValueError
    for key in ("train", "valid", "test", "energy_key", "forces_key"):
        if key in data:
            raise ValueError(f"data.{key}: set by potlab learn (the iteration's data), "
                             "leave it out")
    try:
        parse_config({**v, "data": {**data, "train": "<iteration data>"}}, source="train")
    except ConfigError as err:
        raise ValueError(str(err).removeprefix("train: ")) from None
    return v


class LearnConfig(StrictModel):
    name: str = "learn"
    structure: StructureSpec
    reference: ReferenceSpec
    relax: RelaxSpec = Field(default_factory=RelaxSpec)
    initial_data: InitialData
    reference_run: ReferenceRun = Field(default_factory=ReferenceRun)
    train: dict[str, Any]
    explore: SteeredExplorer | MDExplorer = Field(discriminator="kind")
    score: ScoreSpec = Field(default_factory=ScoreSpec)
    select: SelectSpec = Field(default_factory=SelectSpec)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    convergence: ConvergenceSpec = Field(default_factory=ConvergenceSpec)
    assess: AssessSpec = Field(default_factory=AssessSpec)
    #: each iteration's member m continues from the previous iteration's member m (its
    #: weights, E0, shift and scale; DP-GEN's ``training_init_model``) instead of starting
    #: from scratch: a time budget per iteration then adds up over the iterations
    warm_start: bool = False
    seed: int = 0
    #: where relative paths point (the YAML's folder); set by :func:`load_learn_config`
    base_dir: str = "."

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        com = v.get("committee")
        if not isinstance(com, (dict, int)):
            raise ValueError("committee: required (a committee gives the uncertainty)")  # noqa: TRY004
        for key in ("inherit_from", "init_from"):
            if isinstance(com, dict) and key in com:
                raise ValueError(f"committee.{key}: set by potlab learn (the previous "
                                 "iteration's committee), leave it out")
        return check_train_section(v)

    @model_validator(mode="after")
    def _steered(self) -> LearnConfig:
        from potlab.md.protocol import ProtocolError, parse_protocol

        try:
            p = parse_protocol(self.explore.protocol, source="explore.protocol")
        except ProtocolError as err:
            raise ValueError(str(err)) from None
        if self.explore.kind == "steered" and p.steered is None:
            raise ValueError("explore.protocol: a steered explorer needs a 'steered' section")
        if self.score.measure == "cv_force_std" and self.explore.kind != "steered":
            raise ValueError("score.measure: cv_force_std is the spread of the tension along "
                             f"a pulled coordinate; explore.kind is {self.explore.kind!r}, "
                             "not steered")
        if (self.assess.molecules or self.assess.members) and self.explore.kind != "steered":
            raise ValueError("assess: members and molecules compare barriers; they need a "
                             "steered explorer")
        if self.measure.repeats is not None:
            if self.explore.kind != "steered":
                raise ValueError("measure.repeats: pulls a side of a steered explorer; "
                                 f"explore.kind is {self.explore.kind!r}")
            if self.measure.repeats < p.repeats * len(p.temperatures_K):
                raise ValueError(f"measure.repeats: {self.measure.repeats} is fewer than the "
                                 f"explorer's own pulls ({p.repeats}); the measure adds pulls")
            if len(p.temperatures_K) > 1:
                raise ValueError("measure.repeats: one temperature only (the explorer has "
                                 f"{len(p.temperatures_K)})")
        return self

    def protocol(self):
        """The explorer's :class:`potlab.md.MDProtocol`."""
        from potlab.md.protocol import parse_protocol

        return parse_protocol(self.explore.protocol, source="explore.protocol")

    def measure_protocol(self):
        """The explorer's protocol with ``measure.repeats`` pulls (its own repeats when
        that is None; the reference run pulls this): the explorer's pulls, then pulls with
        the next seeds."""
        p = self.protocol()
        n = self.measure.repeats
        return p if n is None or n <= p.repeats else p.model_copy(update={"repeats": n})

    def measure_extra(self):
        """The pulls the measure adds to the explorer's own (None: none): the protocol with
        the ``measure.repeats - repeats`` seeds after the explorer's, run in ``measure``."""
        p = self.protocol()
        n = self.measure.repeats
        if n is None or n <= p.repeats:
            return None
        return p.model_copy(update={"repeats": n - p.repeats, "seed": p.seed + p.repeats})

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings key by key, everything else replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_learn_config(raw: dict[str, Any], source: str = "<config>", preset: str | None = None,
                       base_dir: str | Path | None = None) -> LearnConfig:
    """Validate a config mapping (``presets`` merged first when ``preset`` is given)."""
    raw = dict(raw)
    presets = raw.pop("presets", None) or {}
    if not isinstance(presets, dict):
        raise LearnConfigError(f"{source}: presets: expected a mapping of name -> partial config")
    if preset is not None:
        if preset not in presets:
            known = ", ".join(presets) or "none"
            raise LearnConfigError(f"{source}: no preset {preset!r} (presets: {known})")
        raw = merge(raw, presets[preset])
    if base_dir is not None:
        raw["base_dir"] = str(base_dir)
    try:
        return LearnConfig(**raw)
    except ValidationError as err:
        raise LearnConfigError(format_validation_error(err, source)) from None


def resolve_config_path(name: str | Path) -> Path:
    """A YAML path, or the name of a bundled config (``hexane`` -> ``potlab/learn/hexane.yaml``)."""
    p = Path(name)
    if p.exists() or p.suffix in (".yaml", ".yml"):
        return p
    bundled = BUNDLED / f"{name}.yaml"
    if bundled.exists():
        return bundled
    raise LearnConfigError(f"{name}: no such config file (bundled: "
                           f"{', '.join(sorted(q.stem for q in BUNDLED.glob('*.yaml')))})")


def load_learn_config(path: str | Path, preset: str | None = None) -> LearnConfig:
    """Read and validate a ``potlab learn`` YAML file (or a bundled config's name)."""
    path = resolve_config_path(path)
    raw = read_yaml_mapping(path, LearnConfigError)
    return parse_learn_config(raw, source=str(path), preset=preset, base_dir=path.parent.resolve())


def config_presets(path: str | Path) -> list[str]:
    raw = read_yaml_mapping(resolve_config_path(path), LearnConfigError)
    return list((raw.get("presets") or {}).keys())

