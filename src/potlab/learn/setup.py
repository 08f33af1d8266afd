"""Preparing what a learn run judges against, with the reference method: the start
structure (read, or a SMILES conformer, then relaxed by reference MD), the initial data
(reference MD frames) and the reference run of the explorer's protocol (its frames the
unseen test set, its tracked quantity the reference value). The loop's setup and the
transfer test's molecules are prepared by the same functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms

from potlab.atomic import atomic_path
from potlab.learn.config import InitialMD, RelaxSpec, StructureSpec


def make_structure(spec: StructureSpec, resolve: Callable[[str], Path]) -> Atoms:
    """The structure ``spec`` names: a file (``resolve`` makes its path) or a conformer."""
    if spec.file is not None:
        atoms = ase.io.read(resolve(spec.file))
    else:
        from potlab.reference.generate.liquid import conformer

        atoms = conformer(spec.smiles, seed=spec.seed)
    atoms.calc = None
    return atoms


def relax(atoms: Atoms, calculator, spec: RelaxSpec, run_dir: Path) -> Atoms:
    """Seed 002's relaxation: ``spec.steps`` of NVT MD (``spec.thermostat``) at
    ``spec.temperature_K`` with the reference; ``atoms`` take the last frame's positions
    (resumable: a finished run is read back)."""
    if spec.steps == 0:
        return atoms
    from potlab.md.protocol import parse_protocol
    from potlab.md.runner import run_md

    p = parse_protocol({"ensemble": "nvt", "thermostat": spec.thermostat, "steps": spec.steps,
                        "friction_per_fs": spec.friction_per_fs, "tdamp_fs": spec.tdamp_fs,
                        "timestep_fs": spec.timestep_fs, "temperatures_K": [spec.temperature_K],
                        "interval": spec.steps, "seed": spec.seed, "formats": ["extxyz"],
                        "monitors": {"enabled": False}}, source="relax")
    run_md(atoms, calculator, p, run_dir)
    atoms.positions = ase.io.read(run_dir / "trajectory.extxyz", -1).positions
    return atoms


def write_structure(atoms: Atoms, path: Path) -> None:
    with atomic_path(path, suffix=".extxyz") as tmp:
        ase.io.write(tmp, atoms, format="extxyz")


def reference_md_frames(start: Atoms, method, md: InitialMD, run_dir: Path) -> list[Atoms]:
    """Seed 002's initial data: reference NVT MD frames with the labels the run computed."""
    from potlab.reference.generate.md_sampling import MDSamplingParams, md_sampling

    method.check()
    params = MDSamplingParams(temperatures=[md.temperature_K], start_K=md.start_K,
                              ramp_fs=md.ramp_fs, steps=md.steps, timestep=md.timestep_fs,
                              every=md.every, seed=md.seed)
    return md_sampling(start, method, params, run_dir, workers=1)


def reference_run(explorer, start: Atoms, labeller, run_dir: Path, label_every: int,
                  frames_path: Path | None, break_factor: float | None = None) -> dict[str, Any]:
    """The explorer's run with the reference (``labeller``'s method, its several runs side
    by side on its workers or scheduler): its tracked value (of a steered run, where its
    first pull peaked and, given ``break_factor``, the bonds each pull broke) and, with ``frames_path``,
    every ``label_every``-th frame of each of its runs labelled (through the store) and
    written there, run after run."""
    from potlab.data.writers import write_extxyz
    from potlab.learn.report import pull_peak

    method = labeller.method_obj()
    method.check()
    exp = explorer.run(start, method.calculator(start), run_dir, make_calculator=method.calculator,
                       workers=labeller.workers, scheduler=labeller.scheduler)
    out: dict[str, Any] = {"value_eV": exp.tracked_eV, "stopped": exp.stopped, "test_frames": 0}
    if exp.work_curve is not None:  # a steered run: where its (first) pull peaked
        out["peak"] = pull_peak(Path(run_dir))
        if break_factor is not None:  # and which bond each pull broke
            from potlab.learn.explorers import pulls_broken_bonds

            out["broken_bonds"] = pulls_broken_bonds(run_dir, start, break_factor)
    if len(exp.tracked_each) > 1:  # several pulls: value_eV is their mean
        out["values_eV"] = exp.tracked_each
    if frames_path is not None:
        runs = np.zeros(len(exp.frames), int) if exp.run_index is None else exp.run_index
        in_run = np.arange(len(runs)) - np.unique(runs, return_index=True)[1][runs]
        res = labeller([bare(f) for f, k in zip(exp.frames, in_run) if k % label_every == 0])
        write_extxyz(frames_path, res.labelled)
        out |= {"test_frames": len(res.labelled), "failed": len(res.failures)}
    return out


def bare(frame: Atoms, keep_info: bool = False) -> Atoms:
    """Numbers, positions, cell and pbc of a frame (no calculator, no labels)."""
    out = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=frame.pbc)
    if keep_info:
        out.info.update({k: v for k, v in frame.info.items()
                         if k in ("config_type", "al_iteration", "explore_frame", "explore_step",
                                  "charge", "spin")})
    return out
