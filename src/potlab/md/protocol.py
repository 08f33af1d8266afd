"""MD protocols as data: a validated pydantic model read from YAML (an unknown key is an
error that names it and the file).

Seed 000's protocol ("start at 100 K, ramp to T over 5 ps by velocity scaling, then NVT
with a Nose-Hoover thermostat, 2 fs steps, three repeats per temperature") is::

    ensemble: nvt
    thermostat: nose-hoover
    timestep_fs: 2.0
    steps: 25000            # production steps after the ramp
    temperatures_K: [800, 900, 1000, 1100, 1200]
    repeats: 3
    ramp: {start_K: 100, duration_ps: 5}

Units: fs, K, ps, GPa, eV/A^2, A/ps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from potlab.strict import StrictModel as _Strict
from potlab.strict import as_now
from potlab.strict import format_validation_error as _format


class ProtocolError(ValueError):
    """A protocol problem; the message names the file and the key."""



class Ramp(_Strict):
    """Heat from ``start_K`` to the target temperature over ``duration_ps`` by rescaling the
    velocities every ``every_steps`` steps (velocity-Verlet between rescalings)."""

    start_K: float = Field(100.0, gt=0)
    duration_ps: float = Field(5.0, gt=0)
    every_steps: int = Field(1, ge=1)


class Steered(_Strict):
    """A harmonic spring of constant ``k_eV_A2`` between the (mass-weighted) centres of
    ``group_a`` and ``group_b`` (atom indices; one index each = two atoms) whose rest length
    moves at ``velocity_A_ps`` from ``rest_length_A`` (default: the initial distance)."""

    group_a: list[int] = Field(min_length=1)
    group_b: list[int] = Field(min_length=1)
    k_eV_A2: float = Field(10.0, gt=0)
    velocity_A_ps: float = 1.0
    rest_length_A: float | None = None

    @model_validator(mode="after")
    def _distinct(self) -> Steered:
        for name in ("group_a", "group_b"):
            g = getattr(self, name)
            if len(set(g)) != len(g):
                raise ValueError(f"{name} lists an atom twice: {g}")
        shared = sorted(set(self.group_a) & set(self.group_b))
        if shared:
            raise ValueError(f"group_a and group_b share atoms {shared}")
        return self

    def check_atoms(self, n_atoms: int) -> None:
        """Refuse an index outside a structure of ``n_atoms`` atoms (every engine)."""
        for idx in (*self.group_a, *self.group_b):
            if not 0 <= idx < n_atoms:
                raise ValueError(f"steered: atom index {idx} outside 0..{n_atoms - 1}")


class Monitors(_Strict):
    """Live stability monitors (see :mod:`potlab.md.monitors`); ``stop`` ends the run when one
    fires. ``rdf_threshold`` (A) switches on the windowed RDF check."""

    enabled: bool = True
    stop: bool = True
    bond_stretch_A: float | None = 0.5
    #: a bond beyond this factor times its initial length (seed 003's explorer: 2.0)
    bond_stretch_factor: float | None = Field(None, gt=1.0)
    exclude_elements: list[str] | None = None  # bond monitor; None: groups 1 and 2
    fusion_fraction: float | None = 0.5
    density_g_cm3: tuple[float, float] | None = (0.2, 2.0)
    temperature_factor: float | None = 5.0
    temperature_max_K: float | None = None
    rdf_threshold: float | None = None
    rdf_window_ps: float = 1.0


class Uncertainty(_Strict):
    """Evaluate a committee (``potlab-committee/1`` file) on the running structure every
    ``every_steps`` steps and log its energy std (eV) and max force variance (eV^2/A^2) in
    ``uq_log.csv``; with ``stop``, a value above ``max_forces_var`` or ``max_energy_std``
    ends the run like a failing monitor (monitor name ``uncertainty``)."""

    committee: str
    every_steps: int = Field(10, ge=1)
    max_forces_var: float | None = Field(None, gt=0)
    max_energy_std: float | None = Field(None, gt=0)
    stop: bool = False


class MDProtocol(_Strict):
    """Everything a run needs besides the structure and the calculator (which may be given
    here too, as ``structure``, ``model``, ``calc_kwargs``, ``supercell``)."""

    ensemble: Literal["nve", "nvt", "npt"] = "nvt"
    thermostat: Literal["langevin", "nose-hoover", "bussi", "berendsen"] = "langevin"
    barostat: Literal["isotropic", "anisotropic"] = "isotropic"
    temperatures_K: list[float] = Field(default_factory=lambda: [300.0], min_length=1)
    repeats: int = Field(1, ge=1)
    seed: int = 0
    timestep_fs: float = Field(1.0, gt=0)
    steps: int = Field(1000, ge=0)
    interval: int = Field(10, ge=1, description="store a frame and a log row every N steps")
    block: int = Field(10, ge=1, description="flush to disk every N stored frames")
    friction_per_fs: float = Field(0.01, gt=0, description="Langevin friction (1/fs)")
    tdamp_fs: float = Field(100.0, gt=0, description="Nose-Hoover / Bussi / Berendsen time "
                            "constant (fs)")
    pressure_GPa: float = 1.01325e-4
    pdamp_fs: float = Field(1000.0, gt=0)
    initial_temperature_K: float | None = None
    ramp: Ramp | None = None
    steered: Steered | None = None
    monitors: Monitors = Field(default_factory=Monitors)
    formats: list[Literal["extxyz", "traj"]] = Field(default_factory=lambda: ["extxyz", "traj"])
    engine: Literal["ase", "lammps", "batched"] = "ase"
    skin_A: float = Field(0.0, ge=0, description="Verlet skin (A) of a potlab potential's "
                          "neighbour list, every engine; 0 searches every step")
    uncertainty: Uncertainty | None = None
    structure: str | None = None
    supercell: tuple[int, int, int] | None = None
    model: str | None = None
    calc_kwargs: dict[str, Any] = Field(default_factory=dict)
    dtype: Literal["float32", "float64"] | None = None
    device: str | None = Field(None, description="device of a potlab model: cpu, cuda, "
                               "cuda:N or auto (default cpu)")

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        from potlab.devices import check_device_name

        return None if v is None else check_device_name(v)

    @model_validator(mode="after")
    def _consistent(self) -> MDProtocol:
        if self.ensemble == "nve" and self.ramp is not None:
            raise ValueError("a ramp needs a thermostatted ensemble (nvt or npt), not nve")
        if self.engine == "batched" and self.ensemble == "npt":
            raise ValueError("engine batched runs nve and nvt (npt runs with engine ase "
                             "or lammps)")
        if self.engine == "lammps" and (self.ensemble == "npt" or self.steered is not None):
            raise ValueError("engine lammps runs nve and nvt (npt and steered MD run with "
                             "engine ase)")
        return self

    @property
    def ramp_steps(self) -> int:
        """Number of ramp steps before production (0 without a ramp)."""
        if self.ramp is None:
            return 0
        return round(1000.0 * self.ramp.duration_ps / self.timestep_fs)

    @property
    def total_steps(self) -> int:
        return self.ramp_steps + self.steps


# Settings that choose which runs exist, not how one run goes: not compared on a rerun.
_NOT_COMPARED = ("temperatures_K", "repeats", "seed")


def run_settings(protocol: MDProtocol) -> dict[str, Any]:
    """The settings one run directory depends on (JSON-able): the protocol without the
    list of temperatures, the repeat count and the base seed (the run's own temperature
    and seed are saved beside them)."""
    return protocol.model_dump(mode="json", exclude=set(_NOT_COMPARED))


def settings_with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """Saved :func:`run_settings` with the fields they lack at their defaults: a run made
    before a setting existed ran with the behaviour its default keeps. ``saved`` as it is
    when it no longer validates (a setting since removed or renamed: it differs)."""
    now = as_now(saved, MDProtocol, exclude=_NOT_COMPARED)
    return saved if now is None else now


def differing_keys(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the keys whose values differ between two settings dicts."""
    keys = []
    for k in sorted(set(saved) | set(current)):
        a, b = saved.get(k, "<missing>"), current.get(k, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            keys += differing_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys


def run_dir_name(temperature_K: float, repeat: int) -> str:
    """``T800K_r0``: the directory of one temperature and repeat."""
    t = f"{temperature_K:g}"
    return f"T{t}K_r{repeat}"


def parse_protocol(raw: dict[str, Any] | None, source: str = "<protocol>") -> MDProtocol:
    """Validate a protocol dict; errors name ``source`` and the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProtocolError(f"{source}: expected a mapping at the top level")
    try:
        return MDProtocol(**raw)
    except ValidationError as err:
        raise ProtocolError(_format(err, source)) from None


def load_protocol(path: str | Path) -> MDProtocol:
    """Read and validate a YAML protocol file."""
    path = Path(path)
    if not path.exists():
        raise ProtocolError(f"{path}: no such protocol file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProtocolError(f"{path}: not valid YAML: {err}") from None
    return parse_protocol(raw, source=str(path))
