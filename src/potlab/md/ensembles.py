"""ASE integrators for each ensemble, and their internal state for resuming.

NVE: velocity Verlet. NVT: Langevin (``friction_per_fs``), Nose-Hoover chain (``tdamp_fs``,
chain of 3), Bussi CSVR (``tdamp_fs``). NPT: ASE's MTK integrators with a Nose-Hoover chain
thermostat; ``isotropic`` scales the volume only (``IsotropicMTKNPT``), ``anisotropic``
lets all nine cell components move (``MTKNPT``). Units: fs, K, GPa.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms, units
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.md import MolecularDynamics
from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT
from ase.md.verlet import VelocityVerlet

from potlab.md.protocol import MDProtocol

# Internal state of ASE's thermostats/barostats (3.23-3.29) restored on resume.
_STATE_KEYS = ("_eta", "_p_eta", "_xi", "_p_xi", "_eps", "_p_eps", "_cell0", "_volume0",
               "_h", "_p_g", "_p_c", "_h0_basis", "transferred_energy")


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
    return {"dyn": dyn, "thermostat": getattr(dyn, "_thermostat", None),
            "barostat": getattr(dyn, "_barostat", None)}


def dynamics_state(dyn: MolecularDynamics) -> dict[str, Any]:
    """Thermostat/barostat variables and the RNG state of ``dyn`` (picklable)."""
    state: dict[str, Any] = {}
    for name, obj in _parts(dyn).items():
        if obj is None:
            continue
        for key in _STATE_KEYS:
            if key in vars(obj):
                state[f"{name}.{key}"] = np.copy(getattr(obj, key))
    rng = getattr(dyn, "rng", None)
    if isinstance(rng, np.random.Generator):
        state["rng"] = rng.bit_generator.state
    return state


def restore_dynamics_state(dyn: MolecularDynamics, state: dict[str, Any]) -> None:
    """Put back what :func:`dynamics_state` saved (keys the integrator lacks are ignored)."""
    parts = _parts(dyn)
    for full, value in state.items():
        if full == "rng":
            rng = getattr(dyn, "rng", None)
            if isinstance(rng, np.random.Generator):
                rng.bit_generator.state = value
            continue
        name, key = full.split(".", 1)
        obj = parts.get(name)
        if obj is not None and key in vars(obj):
            cur = getattr(obj, key)
            setattr(obj, key, value.item() if np.ndim(value) == 0 and np.isscalar(cur) else value)
