"""Molecular dynamics with any ASE calculator: ensembles, protocols (ramps, temperatures,
repeats), steered MD, block-flushed trajectories, stability monitors and a LAMMPS bridge."""

from potlab.md.monitors import (
    BondMonitor,
    DensityMonitor,
    FiniteMonitor,
    FusionMonitor,
    Monitor,
    RDFMonitor,
    StabilityResult,
    TemperatureMonitor,
    check_trajectory,
    default_monitors,
)
from potlab.md.protocol import MDProtocol, ProtocolError, load_protocol, parse_protocol
from potlab.md.runner import MDResult, run_md, run_protocol
from potlab.md.steered import SteeredSpring, activation_energy

__all__ = [
    "BondMonitor",
    "DensityMonitor",
    "FiniteMonitor",
    "FusionMonitor",
    "MDProtocol",
    "MDResult",
    "Monitor",
    "ProtocolError",
    "RDFMonitor",
    "StabilityResult",
    "SteeredSpring",
    "TemperatureMonitor",
    "activation_energy",
    "check_trajectory",
    "default_monitors",
    "load_protocol",
    "parse_protocol",
    "run_md",
    "run_protocol",
]
