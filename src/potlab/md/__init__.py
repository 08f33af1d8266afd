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

__all__ = [
    "BondMonitor",
    "DensityMonitor",
    "FiniteMonitor",
    "FusionMonitor",
    "Monitor",
    "RDFMonitor",
    "StabilityResult",
    "TemperatureMonitor",
    "check_trajectory",
    "default_monitors",
]
