"""ASE integrators for each ensemble, and their state, saved explicitly for an exact resume.

NVE: velocity Verlet. NVT: Langevin (``friction_per_fs``), Nose-Hoover chain (``tdamp_fs``,
chain of 3), Bussi CSVR (``tdamp_fs``), Berendsen (``tdamp_fs``: ASE's ``NVTBerendsen``, the
weak coupling seed 002 relaxed and pulled with; it does not sample the canonical ensemble,
and ASE bounds each step's scaling factor to [0.9, 1.1]). NPT: ASE's MTK integrators with a Nose-Hoover chain
thermostat; ``isotropic`` scales the volume only (``IsotropicMTKNPT``), ``anisotropic``
lets all nine cell components move (``MTKNPT``). Units: fs, K, GPa.

Resume: :data:`STATE` names, per integrator class, every attribute that changes while it
runs (thermostat and barostat variables, RNG). :func:`dynamics_state` saves exactly these
and then proves that they are enough: it builds a fresh integrator, restores the saved
state into it and compares every numerical attribute with the running one. An integrator
class potlab does not know, or one whose state the table misses (a newer ASE that added a
variable), raises :class:`CheckpointError` instead of writing a checkpoint that would
resume inexactly. The checkpoint records the ASE version; another version is refused.
"""

from __future__ import annotations

from typing import Any

import ase
import numpy as np
from ase import Atoms, units
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.md import MolecularDynamics
from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT
from ase.md.nvtberendsen import NVTBerendsen
from ase.md.verlet import VelocityVerlet

from potlab.md.protocol import MDProtocol


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or restored exactly."""


# part -> attributes holding the running state, per integrator class. "dyn" is the
# integrator, "thermostat"/"barostat" its NoseHooverChainThermostat / MTK barostat.
STATE: dict[str, dict[str, tuple[str, ...]]] = {
    "VelocityVerlet": {"dyn": ()},
    "Langevin": {"dyn": ("rng",)},
    "Bussi": {"dyn": ("rng", "transferred_energy")},
    "NVTBerendsen": {"dyn": ()},  # deterministic: no state beyond positions and momenta
    "NoseHooverChainNVT": {"dyn": (), "thermostat": ("_eta", "_p_eta")},
    "IsotropicMTKNPT": {"dyn": ("_eps", "_p_eps", "_cell0", "_volume0"),
                        "thermostat": ("_eta", "_p_eta"), "barostat": ("_xi", "_p_xi")},
    "MTKNPT": {"dyn": ("_h", "_p_g"), "thermostat": ("_eta", "_p_eta"),
               "barostat": ("_xi", "_p_xi")},
}
# Attributes a step overwrites before reading (scratch), or bookkeeping that is not physics.
_SCRATCH = {"v", "rnd_pos", "rnd_vel", "nsteps", "max_steps", "observers", "atoms",
            "trajectory", "logfile", "comm", "_q", "_p", "masses", "_masses"}


def make_dynamics(atoms: Atoms, protocol: MDProtocol, temperature_K: float,
                  rng: np.random.Generator, ensemble: str | None = None) -> MolecularDynamics:
    """The ASE integrator for ``protocol`` at ``temperature_K`` (K); ``ensemble`` overrides
    the protocol's (the ramp runs ``"nve"``). Stochastic thermostats draw from ``rng``."""
    ensemble = ensemble or protocol.ensemble
    dt = protocol.timestep_fs * units.fs
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    tdamp = protocol.tdamp_fs * units.fs
    if ensemble == "nvt":
        if protocol.thermostat == "langevin":
            return Langevin(atoms, timestep=dt, temperature_K=temperature_K,
                            friction=protocol.friction_per_fs / units.fs, rng=rng, fixcm=False)
        if protocol.thermostat == "bussi":
            return Bussi(atoms, timestep=dt, temperature_K=temperature_K, taut=tdamp, rng=rng)
        if protocol.thermostat == "berendsen":
            return NVTBerendsen(atoms, timestep=dt, temperature_K=temperature_K, taut=tdamp,
                                fixcm=False)
        return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temperature_K, tdamp=tdamp)
    if ensemble == "npt":
        if not atoms.pbc.all():
            raise ValueError("npt needs a periodic cell in all three directions")
        cls = IsotropicMTKNPT if protocol.barostat == "isotropic" else MTKNPT
        return cls(atoms, timestep=dt, temperature_K=temperature_K,
                   pressure_au=protocol.pressure_GPa * units.GPa, tdamp=tdamp,
                   pdamp=protocol.pdamp_fs * units.fs)
    raise ValueError(f"unknown ensemble {ensemble!r}")


def _parts(dyn: MolecularDynamics) -> dict[str, Any]:
    parts = {"dyn": dyn, "thermostat": vars(dyn).get("_thermostat"),
             "barostat": vars(dyn).get("_barostat")}
    return {k: v for k, v in parts.items() if v is not None}


def _table(dyn: MolecularDynamics) -> dict[str, tuple[str, ...]]:
    name = type(dyn).__name__
    if name not in STATE:
        raise CheckpointError(f"cannot checkpoint ASE integrator {name}: potlab does not know "
                              "its state (known: " + ", ".join(STATE) + ")")
    return STATE[name]


def _get(obj: Any, key: str) -> Any:
    value = getattr(obj, key)
    if isinstance(value, np.random.Generator):
        return {"bit_generator": value.bit_generator.state}
    return np.copy(value) if isinstance(value, np.ndarray) else value


def _set(obj: Any, key: str, value: Any) -> None:
    current = getattr(obj, key)
    if isinstance(current, np.random.Generator):
        current.bit_generator.state = value["bit_generator"]
    elif isinstance(current, np.ndarray):
        current[...] = value  # in place: other objects may hold the same array
    else:
        setattr(obj, key, value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.random.Generator) and isinstance(b, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state
    if isinstance(a, (np.ndarray, float, int, np.floating)) or isinstance(b, np.ndarray):
        try:
            return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
        except TypeError:
            return False
    return True  # references to other objects (calculators, callables): not state


def dynamics_state(dyn: MolecularDynamics, rebuild=None) -> dict[str, Any]:
    """The running state of ``dyn`` (plain data, picklable): the attributes :data:`STATE`
    names for its class. With ``rebuild`` (a function returning a fresh integrator on a copy
    of the atoms), the state is restored into that fresh one and every numerical attribute
    compared: a difference raises :class:`CheckpointError` naming it."""
    table = _table(dyn)
    parts = _parts(dyn)
    state = {"class": type(dyn).__name__, "ase": ase.__version__,
             "values": {f"{p}.{k}": _get(parts[p], k) for p, keys in table.items() for k in keys}}
    if rebuild is not None:
        fresh = rebuild()
        restore_dynamics_state(fresh, state)
        fresh_parts = _parts(fresh)
        for p, obj in parts.items():
            other = fresh_parts.get(p)
            for k, v in vars(obj).items():
                if k in _SCRATCH or k.startswith("__"):
                    continue
                if other is None or k not in vars(other) or not _same(v, vars(other)[k]):
                    raise CheckpointError(
                        f"cannot checkpoint {type(dyn).__name__} exactly: attribute {p}.{k} is "
                        f"not part of the saved state (ASE {ase.__version__} changed its "
                        "integrator; potlab.md.ensembles.STATE needs updating)")
    return state


def restore_dynamics_state(dyn: MolecularDynamics, state: dict[str, Any]) -> None:
    """Put back what :func:`dynamics_state` saved; a state from another ASE version or
    integrator class, or missing a variable, raises :class:`CheckpointError`."""
    if state.get("ase") != ase.__version__:
        raise CheckpointError(f"checkpoint written with ASE {state.get('ase')}, this is ASE "
                              f"{ase.__version__}: the integrator state may differ; start over "
                              "(--restart / resume=False)")
    if state.get("class") != type(dyn).__name__:
        raise CheckpointError(f"checkpoint holds a {state.get('class')} state, the run needs "
                              f"{type(dyn).__name__}")
    parts = _parts(dyn)
    values = state["values"]
    for p, keys in _table(dyn).items():
        for k in keys:
            if f"{p}.{k}" not in values:
                raise CheckpointError(f"checkpoint lacks {p}.{k} of {type(dyn).__name__}")
            _set(parts[p], k, values[f"{p}.{k}"])
