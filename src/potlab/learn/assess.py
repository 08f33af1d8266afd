"""Judgements of a learn run that the loop itself does not depend on (``assess`` in the
config), each a recorded step like the loop's own:

- ``members`` (every iteration): the explorer's run with every committee member, not only
  the best: each member's tracked quantity (the barrier) and the committee's spread;
- ``molecule:<name>`` (once, after the loop stops; seed 002's transfer test): the final
  best member pulled apart on another molecule against the reference's own steered run;
- ``architecture:<name>`` (once, after the loop stops; seed 003's question): another
  architecture trained on the loop's final data, run through the explorer's protocol and
  scored on the reference frames, beside the committee's best member.

Files: ``iter_NNN/explore_members/member_M/`` and ``assess/molecules/<name>/`` (relax,
reference_run, reference_frames.extxyz, model_run) and ``assess/architectures/<name>/``
(model, explore). Every run resumes from its own state after a kill; labels go through the
run's label store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from potlab.learn.config import ArchitectureSpec, LearnConfig, LearnConfigError, MoleculeSpec
from potlab.learn.explorers import SteeredExplorer, error_standard_error, pulls_broken_bonds
from potlab.learn.selectors import KCAL_MOL_IN_EV
from potlab.learn.setup import make_structure, reference_run, relax, write_structure


def member_dir(committee_path: str | Path, member: int) -> Path:
    """Where ``potlab train``'s committee layout keeps member ``member``."""
    return Path(committee_path).parent / f"member_{member}"


def error_kcal_mol(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else (value - reference) / KCAL_MOL_IN_EV


def frame_errors(potential, frames_path: Path) -> dict[str, float | None]:
    """Energy and force MAE of ``potential`` on the labelled frames at ``frames_path``."""
    from potlab.analysis.errors import evaluate
    from potlab.data import read_frames

    if not frames_path.exists() or frames_path.stat().st_size == 0:
        return {"test_energy_mae_mev_per_atom": None, "test_forces_mae_mev_per_a": None}
    o = evaluate(potential, read_frames(frames_path))[0]["overall"]
    return {"test_energy_mae_mev_per_atom": o["energy_mae_mev_per_atom"],
            "test_forces_mae_mev_per_a": o.get("forces_mae_mev_per_a")}


def pulls_broke(run_dir: Path, start, factor: float) -> list[bool]:
    """Per steered pull of ``run_dir`` (one, or its ``T*K_r*`` pulls): whether a bond of
    ``start`` is broken (longer than ``factor`` x its length) in the pull's last frame."""
    return [bool(names) for names in pulls_broken_bonds(run_dir, start, factor)]


def repeated_pulls(values: list[float], reference: list[float] | None) -> dict[str, Any]:
    """An assessment pulled several times a side: each pull's barrier (eV) and the
    standard error of the error of the means (kcal/mol; None without the reference's)."""
    se = error_standard_error(values, reference)
    return {"values_eV": list(values),
            "error_se_kcal_mol": None if se is None else se / KCAL_MOL_IN_EV}


def spec_of(item: MoleculeSpec | ArchitectureSpec) -> dict[str, Any]:
    return json.loads(json.dumps(item.model_dump(mode="json")))


def same_spec(recorded: dict[str, Any], item) -> bool:
    """Whether ``item`` has the settings a finished assessment recorded. A field the record
    lacks (it was added to the spec after the record was written) counts as unchanged when
    ``item`` leaves it at its default: the run it records used that behaviour."""
    from potlab.strict import as_now

    return as_now(recorded, type(item)) == spec_of(item)


def check_unchanged(recorded: dict[str, Any], item, kind: str) -> None:
    """A finished assessment is reused only for the settings it ran with."""
    if not same_spec(recorded.get("spec") or {}, item):
        raise LearnConfigError(
            f"assess.{kind}: {item.name!r} was run with other settings; give it another name "
            "(or use another --out) to run it again")


def member_run(job: tuple[str, Any, Any, str, bool]) -> float | None:
    """One member's steered run (a module-level function, so it can run in a worker):
    ``(model file, protocol, start atoms, run directory, one thread)`` -> its barrier."""
    import torch

    import potlab

    model, protocol, start, out, one_thread = job
    if one_thread:  # a worker beside others (never set in the calling process)
        torch.set_num_threads(1)
    pot = potlab.load(model, device=protocol.device or "cpu")
    return SteeredExplorer(protocol).run(start, pot.calculator(), out).tracked_eV


@dataclass
class Assessor:
    """The ``assess`` steps of one run directory. ``load`` opens a model file on the
    explorer's device; ``reference_calculator`` and ``labeller`` are the loop's."""

    cfg: LearnConfig
    out: Path
    load: Any
    reference_calculator: Any
    labeller: Any

    def members(self, train: dict[str, Any], explore: dict[str, Any], start, it_dir: Path,
                reference_eV: float | None) -> dict[str, Any]:
        """The explorer's run with every member (the best member's is the iteration's own)."""
        from potlab.executor import run_jobs

        members = [r["member"] for r in train["members"]]
        others = [m for m in members if m != train["best_member"]]
        protocol = self.cfg.protocol()
        com = self.cfg.train["committee"]
        workers = min(com.get("workers", 1) if isinstance(com, dict) else 1, len(others) or 1)
        jobs = [(str(member_dir(train["committee"], m) / "model.pt"), protocol, start,
                 str(it_dir / "explore_members" / f"member_{m}"), workers > 1) for m in others]
        done = dict(zip(others, run_jobs(member_run, jobs, workers=workers, desc="members")))
        values = [explore["tracked_eV"] if m == train["best_member"] else done[m]
                  for m in members]
        known = np.array([v for v in values if v is not None], dtype=float)
        return {"tracked_eV": values,
                "error_kcal_mol": [error_kcal_mol(v, reference_eV) for v in values],
                "spread_kcal_mol": float(np.ptp(known) / KCAL_MOL_IN_EV) if len(known) else None,
                "std_kcal_mol": float(known.std() / KCAL_MOL_IN_EV) if len(known) else None}

    def molecule(self, mol: MoleculeSpec, best_model: Path) -> dict[str, Any]:
        """Seed 002's transfer test on ``mol``: relax and pull it with the reference, then
        pull it with the final best member; the barrier error and the force MAE."""
        d = self.out / "assess" / "molecules" / mol.name
        start_file = d / "start.extxyz"
        if not start_file.exists():
            atoms = make_structure(mol, self.cfg.path)
            relax(atoms, self.reference_calculator(atoms), self.cfg.relax, d / "relax")
            write_structure(atoms, start_file)
        import ase.io

        start = ase.io.read(start_file)
        n = len(start)
        bad = [k for k in mol.group_a + mol.group_b if not -n <= k < n]
        if bad:
            raise LearnConfigError(f"assess.molecules: {mol.name}: atom index {bad[0]} is out of "
                                   f"range for its {n} atoms")
        raw = json.loads(json.dumps(self.cfg.explore.protocol))
        raw["steered"] = {**raw["steered"], "group_a": mol.group_a, "group_b": mol.group_b}
        if mol.steps is not None:
            raw["steps"] = mol.steps
        from potlab.md.protocol import parse_protocol

        explorer = SteeredExplorer(parse_protocol(raw, source=f"assess.molecules.{mol.name}"))
        frames = d / "reference_frames.extxyz"
        ref = reference_run(explorer, start, self.labeller, d / "reference_run",
                            self.cfg.reference_run.label_every, frames)
        pot = self.load(best_model)
        exp = explorer.run(start, pot.calculator(), d / "model_run")
        broke = {who: pulls_broke(d / run, start, self.cfg.explore.break_factor)
                 for who, run in (("reference", "reference_run"), ("model", "model_run"))}
        out = {"name": mol.name, "formula": start.get_chemical_formula(), "n_atoms": n,
               "reference_eV": ref["value_eV"], "tracked_eV": exp.tracked_eV,
               "reference_broke": all(broke["reference"]), "model_broke": all(broke["model"]),
               "error_kcal_mol": error_kcal_mol(exp.tracked_eV, ref["value_eV"]),
               "test_frames": ref["test_frames"], **frame_errors(pot, frames),
               "model": str(best_model), "spec": spec_of(mol)}
        if len(exp.tracked_each) > 1:  # several pulls a side: each pull's, and the error's SE
            out |= repeated_pulls(exp.tracked_each, ref.get("values_eV"))
            out |= {"reference_broke_pulls": sum(broke["reference"]),
                    "model_broke_pulls": sum(broke["model"])}
        return out

    def architecture(self, arch: ArchitectureSpec, data: Path, start,
                     reference_eV: float | None,
                     reference_each: list[float] | None = None) -> dict[str, Any]:
        """Train ``arch`` on the loop's final data, run the explorer with it and score it."""
        from potlab.train import parse_config, train

        d = self.out / "assess" / "architectures" / arch.name
        raw = json.loads(json.dumps(arch.train))
        raw["data"] = {**(raw.get("data") or {}), "train": str(data)}
        raw["out"] = str(d / "model")
        res = train(parse_config(raw, source=f"assess.architectures.{arch.name}"))
        pot = self.load(d / "model" / "model.pt")
        explorer = (SteeredExplorer(self.cfg.protocol()) if self.cfg.explore.kind == "steered"
                    else None)
        exp = None if explorer is None else explorer.run(start, pot.calculator(), d / "explore")
        value = None if exp is None else exp.tracked_eV
        out = {"name": arch.name, "model": raw.get("model", {}).get("name"),
               "data": str(data), "epochs": res.epochs, "stop_reason": res.stop_reason,
               "tracked_eV": value, "error_kcal_mol": error_kcal_mol(value, reference_eV),
               **frame_errors(pot, self.out / "setup" / "reference_frames.extxyz"),
               "spec": spec_of(arch)}
        if exp is not None and len(exp.tracked_each) > 1:
            out |= repeated_pulls(exp.tracked_each, reference_each)
        return out
