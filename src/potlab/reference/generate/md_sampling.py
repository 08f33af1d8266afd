"""Reference MD sampling (seed 000's protocol) with any reference method as the force field.

For each temperature and repeat: velocities at 100 K, a ramp to the target by velocity
rescaling, then NVT (Langevin) production; every ``every``-th production frame is kept
and labelled with the energy (eV), forces (eV/A) and, for periodic cells, stress
(eV/A^3) the method computed during the run (``REF_energy``/``REF_forces``/``REF_stress``,
``config_type="md_{T}K"``). Runs go through :func:`potlab.md.run_md` (one directory per
temperature and repeat, resumable after a kill), side by side on local processes or
Dask (:func:`potlab.md.run_protocol` with the method's ``calculator``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from potlab.data.keys import CONFIG_TYPE_KEY, REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY
from potlab.reference.methods import Method


class MDSamplingParams(BaseModel):
    """Seed 000: ramp from ``start_K`` (100 K) over ``ramp_fs``, then ``steps`` NVT steps
    of ``timestep`` fs at each of ``temperatures`` (K), ``repeats`` runs each with its own
    seed, keeping every ``every``-th frame. ``friction`` is the Langevin friction (1/fs)."""

    model_config = ConfigDict(extra="forbid")
    temperatures: list[float] = Field(default_factory=lambda: [300.0], min_length=1)
    repeats: int = Field(1, ge=1)
    start_K: float = Field(100.0, gt=0)
    ramp_fs: float = Field(100.0, gt=0)
    steps: int = Field(200, ge=1)
    timestep: float = Field(0.5, gt=0, description="fs")
    every: int = Field(10, ge=1)
    friction: float = Field(0.01, gt=0, description="1/fs")
    seed: int = 0


def _protocol(p: MDSamplingParams):
    from potlab.md.protocol import parse_protocol

    return parse_protocol({
        "ensemble": "nvt", "thermostat": "langevin", "temperatures_K": p.temperatures,
        "repeats": p.repeats, "seed": p.seed, "timestep_fs": p.timestep, "steps": p.steps,
        "interval": p.every, "friction_per_fs": p.friction, "formats": ["extxyz"],
        "ramp": {"start_K": p.start_K, "duration_ps": p.ramp_fs / 1000.0},
        "monitors": {"enabled": False},
    }, source="md_sampling")


def md_sampling(atoms: Atoms, method: Method, params: MDSamplingParams | None,
                workdir: str | os.PathLike[str], *, scheduler: Any = None,
                workers: int | None = 1) -> list[Atoms]:
    """Run the protocol on ``atoms`` with ``method``'s calculator in ``workdir`` and return
    the kept production frames, labelled, ordered by temperature, repeat and step."""
    from potlab.md.runner import run_protocol

    p = params or MDSamplingParams()
    protocol = _protocol(p)
    results = run_protocol(atoms, None, protocol, workdir, make_calculator=method.calculator,
                           workers=workers, scheduler=scheduler, desc="reference MD")
    frames = []
    for res in results:
        for frame in ase.io.read(Path(res.out_dir) / "trajectory.extxyz", ":"):
            if frame.info.get("step", 0) <= protocol.ramp_steps:
                continue
            frames.append(_labelled(frame, res.temperature_K, method))
    return frames


def _labelled(frame: Atoms, temperature: float, method: Method) -> Atoms:
    out = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=frame.pbc,
                momenta=frame.get_momenta())
    out.info[REF_ENERGY_KEY] = float(frame.get_potential_energy())
    out.arrays[REF_FORCES_KEY] = np.array(frame.get_forces())
    if frame.pbc.all() and "stress" in frame.calc.results:
        out.info[REF_STRESS_KEY] = np.array(frame.get_stress(voigt=True))
    out.info[CONFIG_TYPE_KEY] = f"md_{temperature:g}K"
    out.info.update(md_temperature_K=float(temperature), md_step=int(frame.info["step"]),
                    ref_method=method.name)
    return out
