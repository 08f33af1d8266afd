"""A study as data: a YAML file validated by pydantic (an unknown key is an error naming it).

A study names its materials, a reference (a teacher method run with the study's MD protocol,
or the user's own AIMD trajectories), the models to train (each x seeds, one trainer, one
budget), the MD protocol every model repeats, and the analysis settings. ``presets`` hold
partial studies merged over the base (``--preset quick``); a preset may not add new keys.

Paths in the file are relative to the file itself (a study ships with its structures).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from potlab.errors import InputError
from potlab.strict import StrictModel as _Strict
from potlab.strict import format_validation_error as _format


class StudyError(InputError):
    """A study problem; the message names the file and the key."""



_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _check_name(v: str, what: str) -> str:
    if not _NAME.match(v):
        raise ValueError(f"{what} {v!r}: use letters, digits and _ . + - only (it names folders)")
    return v


class Material(_Strict):
    """A material: a structure file (anything ``ase.io.read`` reads) and an optional supercell."""

    structure: str
    supercell: tuple[int, int, int] | None = None


class ReferenceFiles(_Strict):
    """The user's own reference trajectories for one material and temperature (one file per
    repeat), e.g. AIMD as extxyz, OUTCAR or vasprun.xml; energies and forces in the ASE
    calculator fields (or ``energy_key``/``forces_key``)."""

    temperature_K: float = Field(gt=0)
    files: list[str] = Field(min_length=1)


class Reference(_Strict):
    """Where the reference dynamics come from.

    ``source: teacher`` runs ``method`` (a potlab reference method: chgnet, sevennet, gfn1-xtb,
    or ``module:Class``) with the study's MD protocol for every material, temperature and
    repeat. ``source: files`` reads ``trajectories`` instead (per material); ``frame_interval_fs``
    is the time between stored frames when the files carry no ``info['time_fs']``.
    """

    source: Literal["teacher", "files"] = "teacher"
    method: str = "chgnet"
    settings: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None  # how the report names the reference (default: the method)
    surrogate_note: str | None = None
    trajectories: dict[str, list[ReferenceFiles]] = Field(default_factory=dict)
    frame_interval_fs: float | None = Field(None, gt=0)
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    provenance: str | None = None  # for shipped trajectories: the command and versions

    @model_validator(mode="after")
    def _files(self) -> Reference:
        if self.source == "teacher":
            from potlab.reference.methods import get_method

            get_method(self.method, self.settings)  # an unknown name is an error here
        if self.source == "files" and not self.trajectories:
            raise ValueError("source 'files' needs reference.trajectories")
        return self


class DataSplit(_Strict):
    """Labelled frames drawn from the reference trajectories (every ``every``-th stored frame
    after the first, per material), split once for all models (seed 000: one split)."""

    every: int = Field(1, ge=1)
    train_materials: list[str] = Field(min_length=1)
    n_train: int = Field(ge=1)
    n_valid: int = Field(ge=1)
    n_test: int = Field(ge=1)
    seed: int = 0
    # reference temperatures whose frames are drawn (default: all); MD at the others then
    # tests the models away from their training temperatures
    temperatures_K: list[float] | None = Field(None, min_length=1)


class ModelEntry(BaseModel):
    """One architecture: ``name`` (``potlab models``), an optional ``label`` (unique; default
    the name), its hyper-parameters, and ``training`` overrides for this model only."""

    model_config = ConfigDict(extra="allow")
    name: str
    label: str | None = None
    training: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Train(_Strict):
    """Every model x every seed, one trainer, the same ``training`` settings (equal budgets)."""

    models: list[ModelEntry] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    training: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Train:
        keys = [m.key for m in self.models]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"models: labels must be unique, repeated: {', '.join(dup)} "
                             "(give each a 'label')")
        for k in keys:
            _check_name(k, "model label")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: repeated seed")
        return self


class Analyze(_Strict):
    """How the trajectories are judged (seed 000): RDF MAE below ``rdf_stable_below`` is a
    stable RDF; diffusion of ``species`` after ``skip_ps`` of production, fitted by
    ``diffusion_method`` (pymatgen's DiffusionAnalyzer by default, as seed 000 used);
    Arrhenius to ``target_K``; Li densities on a grid of ``paths_spacing_A``."""

    species: str = "Li"
    skip_ps: float = Field(15.0, ge=0)
    rdf_rmax_A: float = Field(6.0, gt=0)
    rdf_bins: int = Field(120, ge=10)
    rdf_stable_below: float = Field(0.02, gt=0)
    diffusion_method: Literal["pymatgen", "potlab"] = "pymatgen"
    min_obs: int = Field(30, ge=1)
    target_K: float = Field(300.0, gt=0)
    paths_spacing_A: float = Field(0.4, gt=0)
    paths_smooth: float = Field(1.0, ge=0)


class Execution(_Strict):
    """Parallel jobs (local processes; a Dask cluster with ``--scheduler``) and threads each."""

    workers: int | None = Field(None, ge=1)  # default: usable CPUs
    threads_per_job: int | None = Field(None, ge=1)  # default: CPUs // workers


class Study(_Strict):
    name: str
    description: str = ""
    root: str | None = None  # folder relative paths start from (default: the file's folder)
    materials: dict[str, Material] = Field(min_length=1)
    reference: Reference = Field(default_factory=Reference)
    data: DataSplit
    train: Train
    md: dict[str, Any]
    md_materials: list[str] | None = None  # default: every material
    analyze: Analyze = Field(default_factory=Analyze)
    execution: Execution = Field(default_factory=Execution)
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    preset: str | None = None  # the preset applied (set by load_study)

    @field_validator("materials")
    @classmethod
    def _names(cls, v):
        for k in v:
            _check_name(k, "material")
        return v

    @field_validator("md")
    @classmethod
    def _protocol(cls, v):
        from potlab.md.protocol import parse_protocol

        for key in ("structure", "model", "calc_kwargs", "supercell"):
            if key in v:
                raise ValueError(f"key {key!r} is set by the study, not in md")
        parse_protocol(v, source="md")
        return v

    @model_validator(mode="after")
    def _cross(self) -> Study:
        for m in self.data.train_materials:
            if m not in self.materials:
                raise ValueError(f"data.train_materials: unknown material {m!r}")
        for m in self.md_materials or []:
            if m not in self.materials:
                raise ValueError(f"md_materials: unknown material {m!r}")
        if self.reference.source == "files":
            for m in self.materials:
                if m not in self.reference.trajectories:
                    raise ValueError(f"reference.trajectories: no files for material {m!r}")
            for m in self.reference.trajectories:
                if m not in self.materials:
                    raise ValueError(f"reference.trajectories: unknown material {m!r}")
        return self

    # ---- derived -------------------------------------------------------------------
    def protocol(self):
        from potlab.md.protocol import parse_protocol

        return parse_protocol(self.md, source="md")

    def md_material_names(self) -> list[str]:
        return list(self.md_materials or self.materials)

    def reference_runs(self, material: str) -> list[tuple[float, int]]:
        """(temperature, repeat) of the reference runs of ``material``."""
        if self.reference.source == "files":
            return [(t.temperature_K, r) for t in self.reference.trajectories[material]
                    for r in range(len(t.files))]
        p = self.protocol()
        return [(t, r) for t in p.temperatures_K for r in range(p.repeats)]

    def reference_label(self) -> str:
        r = self.reference
        return r.label or (r.method if r.source == "teacher" else "reference")


# a preset gives these whole (a quick preset drops a material), others merge key by key
_REPLACED = ("materials", "trajectories")


def _deep_merge(base: dict, over: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in _REPLACED:
            out[k] = _deep_merge(out[k], v, f"{path}{k}.")
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_study(raw: dict[str, Any], source: str = "<study>", base: Path | None = None,
                preset: str | None = None) -> Study:
    """Validate a study dict, apply ``preset`` and resolve relative paths against ``base``."""
    if not isinstance(raw, dict):
        raise StudyError(f"{source}: expected a mapping at the top level")
    raw = copy.deepcopy(raw)
    if preset is not None:
        presets = raw.get("presets") or {}
        if preset not in presets:
            names = ", ".join(presets) or "none"
            raise StudyError(f"{source}: presets: no preset {preset!r} (available: {names})")
        over = presets[preset] or {}
        if not isinstance(over, dict):
            raise StudyError(f"{source}: presets.{preset}: expected a mapping")
        raw = _deep_merge(raw, over)
        raw["preset"] = preset
        source = f"{source} (preset {preset})"
    try:
        study = Study(**raw)
    except ValidationError as err:
        raise StudyError(_format(err, source)) from None
    except ValueError as err:
        raise StudyError(f"{source}: {err}") from None
    # models: validate their hyper-parameters and the training settings with the trainer's own
    from potlab.train.config import ConfigError, parse_config

    for m in study.train.models:
        training = {**study.train.training, **m.training}
        try:
            parse_config({"data": {"train": "x"}, "model": {"name": m.name, **m.params()},
                          "training": training, "out": "x"}, source=f"{source}: train.models[{m.key}]")
        except ConfigError as err:
            raise StudyError(str(err)) from None
    if study.root is not None:
        root = Path(study.root).expanduser()
        base = root if root.is_absolute() or base is None else (base / root)
    if base is not None:
        _resolve_paths(study, base)
    for name, mat in study.materials.items():
        if not Path(mat.structure).exists():
            raise StudyError(f"{source}: materials.{name}.structure: no such file {mat.structure}")
    for name, runs in study.reference.trajectories.items():
        for i, t in enumerate(runs):
            for f in t.files:
                if not Path(f).exists():
                    raise StudyError(f"{source}: reference.trajectories.{name}[{i}].files: "
                                     f"no such file {f}")
    temps = study.data.temperatures_K
    for name in study.materials if temps is not None else ():
        if not any(float(t) in temps for t, _ in study.reference_runs(name)):
            raise StudyError(f"{source}: data.temperatures_K: {name} has no reference run at "
                             f"{temps} K")
    return study


def _resolve_paths(study: Study, base: Path) -> None:
    def res(p: str) -> str:
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    for mat in study.materials.values():
        mat.structure = res(mat.structure)
    for runs in study.reference.trajectories.values():
        for t in runs:
            t.files = [res(f) for f in t.files]


def load_study(path: str | Path, preset: str | None = None) -> Study:
    """Read a study YAML (a path, or the name of a bundled study such as ``li_conductors``)."""
    path = resolve_study_path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise StudyError(f"{path}: not valid YAML: {err}") from None
    return parse_study(raw, source=str(path), base=path.parent, preset=preset)


BUNDLED = Path(__file__).parent


def bundled_studies() -> dict[str, Path]:
    """The studies that ship with potlab, name -> YAML path."""
    return {p.stem: p for p in sorted(BUNDLED.glob("*.yaml"))}


def copy_study(name: str | Path, dest: str | Path) -> Path:
    """Copy a (bundled) study YAML to ``dest`` for editing, comments kept, with a ``root:``
    line so its relative paths still point at the files they named."""
    src = resolve_study_path(name)
    dest = Path(dest)
    if dest.exists():
        raise StudyError(f"{dest}: exists; give another name")
    text = src.read_text()
    if re.search(r"^root:", text, flags=re.MULTILINE):
        raise StudyError(f"{src}: already has a root: key; copy it as a plain file")
    header = (f"# copied from {src}\n# relative paths below start from root (remove the line to "
              f"use this file's folder)\nroot: {src.parent.resolve()}\n")
    dest.write_text(header + text)
    return dest


def resolve_study_path(path: str | Path) -> Path:
    p = Path(path)
    if p.exists():
        return p
    bundled = bundled_studies()
    if str(path) in bundled:
        return bundled[str(path)]
    raise StudyError(f"{path}: no such study file (bundled studies: {', '.join(bundled)})")
