"""Molecular dynamics: one run loop (:mod:`potlab.md.loop`) over engines (ASE dynamics with
any calculator, LAMMPS ``fix external``, batched replicas of a potlab potential), protocols
(ramps, temperatures, repeats), steered MD, block-flushed trajectories, checkpoints checked
on resume, stability monitors and committee uncertainty."""

from potlab.md.batched import run_batched
from potlab.md.engine import Replica
from potlab.md.ensembles import CheckpointError
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
from potlab.md.runner import MDResult, protocol_replicas, run_md, run_protocol
from potlab.md.steered import SteeredSpring, activation_energy

__all__ = [
    "BondMonitor",
    "CheckpointError",
    "DensityMonitor",
    "FiniteMonitor",
    "FusionMonitor",
    "MDProtocol",
    "MDResult",
    "Monitor",
    "ProtocolError",
    "RDFMonitor",
    "Replica",
    "StabilityResult",
    "SteeredSpring",
    "TemperatureMonitor",
    "activation_energy",
    "check_trajectory",
    "default_monitors",
    "load_protocol",
    "parse_protocol",
    "protocol_replicas",
    "run_batched",
    "run_md",
    "run_protocol",
]
