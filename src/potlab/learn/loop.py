"""The active-learning loop: setup, then per iteration train -> explore -> measure -> score
-> select -> augment -> label -> merge, each step a small unit whose result goes to the
append-only record (:mod:`potlab.learn.record`).

Run directory::

    record.jsonl                 finished steps, one JSON line each (potlab learn status)
    config.json                  the validated config this run was started with
    labels.db                    the label store: every label and failure, by structure hash
    setup/start.extxyz           the (relaxed) start structure
    setup/initial_md/            reference MD for the initial data
    setup/reference_run/         the explorer's protocol with the reference (test set, barrier)
    setup/reference_frames.extxyz  its frames, labelled: the unseen test set
    iter_000/data.extxyz         the data this iteration trains on
    iter_000/committee/          the committee (potlab train's layout; committee.pt)
    iter_000/explore/            the best member's explorer run (trajectory, logs)
    iter_000/scores.csv          committee uncertainty of every explorer frame
    iter_000/selected.json       the threshold used and the selected frames
    iter_000/candidates.extxyz   selected frames and their augmented copies
    iter_000/labelled.extxyz     the new labels; iter_000/failures.json what failed
    iter_000/iteration.json      everything recorded for this iteration
    iter_001/data.extxyz         = iter_000's data + iter_000's new labels, ...
    report.md, work_curves.png   per-iteration table and the work curves

Every step writes its files atomically and is recorded last; a rerun skips recorded steps
and reruns the one in flight, which resumes from its own state (training checkpoints, MD
checkpoints, the label store), so nothing is labelled twice and the numbers are those of
an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.io

from potlab.atomic import write_text_atomic
from potlab.learn.assess import Assessor, check_unchanged, frame_errors
from potlab.learn.augment import UniformNoise
from potlab.learn.config import LearnConfig
from potlab.learn.convergence import Convergence, judge, labels_added
from potlab.learn.explorers import (
    Exploration,
    MDExplorer,
    SteeredExplorer,
    broken_bonds,
    fused_frames,
    labellable_distance,
    pulls_broken_bonds,
)
from potlab.learn.labelling import LabelStep
from potlab.learn.measure import measure_tracked
from potlab.learn.merge import merge_data, unselectable_hashes
from potlab.learn.record import Record
from potlab.learn.resume import check_run_config
from potlab.learn.scores import read_pool, score_rows, write_scores
from potlab.learn.selectors import select_frames, selectors_of
from potlab.learn.setup import (
    bare,
    make_structure,
    reference_md_frames,
    reference_run,
    relax,
    write_structure,
)
from potlab.learn.uncertainty import score_frames

log = logging.getLogger(__name__)

@dataclass
class LearnResult:
    out: Path
    iterations: int
    stop_reason: str | None
    record: Record


def iter_dir(out: Path, i: int) -> Path:
    return out / f"iter_{i:03d}"


class LearningLoop:
    """Run (or resume) ``cfg`` in ``out``. ``scheduler``: Dask address for labelling.
    ``on_step(iteration, step, result)`` is called after each step is recorded (the CLI
    prints a line)."""

    def __init__(self, cfg: LearnConfig, out: str | Path, scheduler: str | None = None,
                 on_step: Callable[[int, str, dict[str, Any]], None] | None = None) -> None:
        # absolute: the record names files by path, and a rerun may start from another folder
        self.cfg, self.out = cfg, Path(out).resolve()
        self.scheduler = scheduler
        self.on_step = on_step
        self.out.mkdir(parents=True, exist_ok=True)
        check_run_config(self.cfg, self.out)
        self.record = Record(self.out)
        self.labeller = LabelStep(cfg.reference.method, cfg.reference.settings,
                                  str(self.out / "labels.db"), scheduler, cfg.reference.workers)
        self.method = self.labeller.method_obj()
        c = cfg.convergence
        self.convergence = Convergence(c.tolerance_kcal_mol, c.consecutive, c.max_iterations,
                                       c.label_budget, c.uncertainty_below)

    # ---- running steps -------------------------------------------------------------------
    def _step(self, iteration: int, step: str, fn: Callable[..., dict[str, Any]],
              *args: Any) -> dict[str, Any]:
        done = self.record.get(iteration, step)
        if done is not None:
            return done
        log.info("iteration %d: %s", iteration, step)
        result = self.record.append(iteration, step, fn(*args))
        if self.on_step is not None:
            self.on_step(iteration, step, result)
        return result

    def run(self) -> LearnResult:
        self._step(-1, "structure", self._structure)
        self._step(-1, "initial_data", self._initial_data)
        ref = self._step(-1, "reference_run", self._reference_run)
        stop: str | None = None
        i = 0
        while True:
            self._step(i, "train", self._train, i)
            self._step(i, "explore", self._explore, i)
            meas = self._step(i, "measure", self._measure, i, ref)
            if self.cfg.assess.members:  # also for iterations finished before it was asked for
                self._step(i, "members", self._members, i, ref)
            # the stop is judged again against the config's limits (a rerun with other
            # convergence limits extends a finished run); an iteration the loop already went
            # on from is kept
            if self.record.get(i, "select") is None:
                stop = judge(self.convergence, self.record, i, meas["error_eV"])
                if stop is None:
                    sc = self._step(i, "score", self._score, i)
                    stop = self.convergence.after_score(sc["max_uncertainty"])
                if stop is not None:
                    self._finish(i, stop)
                    break
            for step in ("select", "augment", "label", "merge"):
                self._step(i, step, getattr(self, f"_{step}"), i)
            i += 1
        self._assess(i, ref)
        self._write_report()
        return LearnResult(self.out, i + 1, stop, self.record)

    # ---- setup ---------------------------------------------------------------------------
    def _reference_calculator(self, atoms):
        self.method.check()
        return self.method.calculator(atoms)

    def _structure(self) -> dict[str, Any]:
        atoms = make_structure(self.cfg.structure, self.cfg.path)
        if self.cfg.relax.steps > 0:
            relax(atoms, self._reference_calculator(atoms), self.cfg.relax,
                  self.out / "setup" / "relax")
        write_structure(atoms, self.out / "setup" / "start.extxyz")
        return {"n_atoms": len(atoms), "formula": atoms.get_chemical_formula(),
                "relax_steps": self.cfg.relax.steps}

    def start_structure(self):
        return ase.io.read(self.out / "setup" / "start.extxyz")

    def _initial_data(self) -> dict[str, Any]:
        from potlab.data import read_frames
        from potlab.data.writers import write_extxyz

        d = self.cfg.initial_data
        if d.file is not None:
            frames = read_frames(self.cfg.path(d.file))
        else:
            frames = reference_md_frames(self.start_structure(), self.method, d.md,
                                         self.out / "setup" / "initial_md")
        for f in frames:
            f.info["al_iteration"] = -1
        write_extxyz(iter_dir(self.out, 0) / "data.extxyz", frames)
        return {"n_frames": len(frames), "source": d.file or "reference md"}

    def _reference_run(self) -> dict[str, Any]:
        rr = self.cfg.reference_run
        if rr.value_eV is not None:
            return {"value_eV": rr.value_eV, "test_frames": 0}
        if not rr.enabled:
            return {"value_eV": None, "test_frames": 0}
        start = self.start_structure()
        return reference_run(self._explorer(None, measure=True), start, self.labeller,
                             self.out / "setup" / "reference_run", rr.label_every,
                             self.out / "setup" / "reference_frames.extxyz",
                             self.cfg.explore.break_factor)

    # ---- iteration steps -----------------------------------------------------------------
    def _explorer(self, committee_path: str | None, measure: bool = False):
        """The explorer; ``measure``: with the measure's pulls (``measure.repeats``)."""
        e = self.cfg.explore
        if e.kind == "steered":
            return SteeredExplorer(self.cfg.measure_protocol() if measure else self.cfg.protocol())
        return MDExplorer(self.cfg.protocol(), committee_path, e.stop_max_forces_var, e.uq_every)

    def _train(self, i: int) -> dict[str, Any]:
        from potlab.train import parse_config, train_committee

        raw = json.loads(json.dumps(self.cfg.train))
        d = iter_dir(self.out, i)
        raw["data"] = {**(raw.get("data") or {}), "train": str(d / "data.extxyz")}
        raw["out"] = str(d / "committee")
        com = raw["committee"]
        com = {"size": com} if isinstance(com, int) else dict(com)
        if com.get("split") == "inherited" and i > 0:
            com["inherit_from"] = str(iter_dir(self.out, i - 1) / "committee")
        if self.cfg.warm_start and i > 0:
            com["init_from"] = str(iter_dir(self.out, i - 1) / "committee")
        raw["committee"] = com
        res = train_committee(parse_config(raw, source="train"))
        best = res.members[res.best_member]
        return {"best_member": res.best_member, "best_dir": best["dir"],
                "members": [{k: m[k] for k in ("member", "n_train", "n_valid", "forces_mae_all",
                                               "energy_mae_all", "epochs", "stop_reason",
                                               "train_s")} for m in res.members],
                "committee": str(res.path), "split": com.get("split", "fresh")}

    def _best(self, i: int):
        import potlab

        tr = self.record.get(i, "train")
        # the explorer's MD runs where its protocol says (md.device), as its committee does
        device = self.cfg.protocol().device or "cpu"
        return potlab.load(Path(tr["best_dir"]) / "model.pt", device=device)

    def _exploration(self, i: int) -> Exploration:
        """Run (or read back: a finished MD run returns at once) iteration ``i``'s explorer."""
        pot = self._best(i)
        tr = self.record.get(i, "train")
        return self._explorer(tr["committee"]).run(self.start_structure(), pot.calculator(),
                                                   iter_dir(self.out, i) / "explore")

    def _explore(self, i: int) -> dict[str, Any]:
        exp = self._exploration(i)
        out = {"frames": len(exp.frames), "tracked_eV": exp.tracked_eV, "stopped": exp.stopped,
               "run_dirs": exp.run_dirs}
        if len(exp.tracked_each) > 1:  # several pulls: tracked_eV is their mean
            out["tracked_each_eV"] = exp.tracked_each
        if self.cfg.explore.kind == "steered":
            from potlab.learn.report import pull_peak

            # where the (first) pull peaked and which bond each pull broke (its product
            # channel), so a report read from the record alone has them
            d, factor = iter_dir(self.out, i) / "explore", self.cfg.explore.break_factor
            out["peak"] = pull_peak(d)
            out["broken_bonds"] = pulls_broken_bonds(d, self.start_structure(), factor)
        return out

    def _finish(self, i: int, reason: str) -> None:
        """Record that the loop stopped after iteration ``i`` (once per reason: a rerun
        that stops there again for the same reason adds nothing)."""
        if self.record.finished() == reason and self.record.get(i, "finished") is not None:
            return
        result = self.record.append(i, "finished", {"reason": reason})
        if self.on_step is not None:
            self.on_step(i, "finished", result)

    def _measure(self, i: int, ref: dict[str, Any]) -> dict[str, Any]:
        out = measure_tracked(self.cfg, self.record.get(i, "explore"), ref,
                              lambda: self._best(i), self.start_structure(), iter_dir(self.out, i))
        if ref.get("test_frames"):
            out |= frame_errors(self._best(i), self.out / "setup" / "reference_frames.extxyz")
        # what the limits said then (the loop judges again on every run: see run())
        out["stop"] = judge(self.convergence, self.record, i, out["error_eV"])
        return out

    def _score(self, i: int) -> dict[str, Any]:
        d = iter_dir(self.out, i)
        tr = self.record.get(i, "train")
        exp = self._exploration(i)
        st = self.cfg.protocol().steered if self.cfg.explore.kind == "steered" else None
        s = score_frames(tr["committee"], exp.frames, workers=self.cfg.score.workers,
                         groups=None if st is None else (st.group_a, st.group_b))
        broken = broken_bonds(exp.frames, self.start_structure(), self.cfg.explore.break_factor)
        aug = self.cfg.augment
        fused = fused_frames(exp.frames, self.cfg.select.min_distance_fraction,
                             labellable_distance(aug.amplitude_A, aug.copies))
        from potlab.reference.hashing import structure_hash

        hashes = [structure_hash(f, *self.method.charge_spin(f)) for f in exp.frames]
        rows = score_rows(exp, s, broken, fused, hashes)
        write_scores(d / "scores.csv", rows)
        unc = s.measure(self.cfg.score.measure)
        return {"frames_scored": len(rows), "measure": self.cfg.score.measure,
                "max_uncertainty": float(unc.max()) if len(unc) else 0.0,
                "stop": self.convergence.after_score(float(unc.max()) if len(unc) else 0.0)}

    def _select(self, i: int) -> dict[str, Any]:
        sel = self.cfg.select
        threshold, screen = selectors_of(sel)
        labels = sel.max_new_labels
        left = self.convergence.labels_left(labels_added(self.record, i))
        if left is not None:
            labels = min(labels, left)
        max_frames = labels // (1 + self.cfg.augment.copies)
        pool = read_pool(iter_dir(self.out, i) / "scores.csv", self.cfg.score.measure)
        known = unselectable_hashes([iter_dir(self.out, i) / "data.extxyz",
                                     self.out / "setup" / "reference_frames.extxyz"],
                                    self.method.charge_spin)
        idx, cal, counts = select_frames(pool, threshold, known, screen, max_frames,
                                         first_only=sel.first_only)
        result = cal.record() | {"max_frames": max_frames, "counts": counts,
                                 "selected": [int(k) for k in idx]}
        write_text_atomic(json.dumps(result, indent=1), iter_dir(self.out, i) / "selected.json")
        return {k: v for k, v in result.items() if k != "selected"} | {"n_selected": len(idx)}

    def _augment(self, i: int) -> dict[str, Any]:
        from potlab.data.writers import write_extxyz

        d = iter_dir(self.out, i)
        selected = json.loads((d / "selected.json").read_text())["selected"]
        exp = self._exploration(i)
        frames = [bare(exp.frames[k]) for k in selected]
        for k, f in zip(selected, frames):
            f.info["explore_frame"] = int(k)
            f.info["explore_step"] = int(exp.steps[k])
        a = self.cfg.augment
        cands = UniformNoise(a.copies, a.amplitude_A, seed=a.seed + 1000 * self.cfg.seed + i)(frames)
        for c in cands:
            c.info["al_iteration"] = i
        write_extxyz(d / "candidates.extxyz", cands)
        return {"selected": len(frames), "augmented": len(cands) - len(frames),
                "candidates": len(cands)}

    def _label(self, i: int) -> dict[str, Any]:
        from potlab.data.writers import write_extxyz

        d = iter_dir(self.out, i)
        path = d / "candidates.extxyz"
        cands = list(ase.io.read(path, ":")) if path.stat().st_size else []
        res = self.labeller([bare(c, keep_info=True) for c in cands])
        write_extxyz(d / "labelled.extxyz", res.labelled)
        write_text_atomic(json.dumps(res.failures, indent=1), d / "failures.json")
        return {"candidates": len(cands), "labelled": len(res.labelled),
                "failed": len(res.failures), "computed": res.computed, "cached": res.cached,
                "failure_reasons": sorted({f["error_type"] for f in res.failures})}

    def _merge(self, i: int) -> dict[str, Any]:
        from potlab.data import read_frames

        d = iter_dir(self.out, i)
        lab = d / "labelled.extxyz"
        new = read_frames(lab) if lab.stat().st_size else []
        n = merge_data(d / "data.extxyz", new, iter_dir(self.out, i + 1) / "data.extxyz")
        return {"added": len(new), "total": n}

    # ---- assessments (potlab.learn.assess) -----------------------------------------------
    def _assessor(self) -> Assessor:
        import potlab

        device = self.cfg.protocol().device or "cpu"
        return Assessor(self.cfg, self.out, lambda p: potlab.load(p, device=device),
                        self._reference_calculator, self.labeller)

    def _members(self, i: int, ref: dict[str, Any]) -> dict[str, Any]:
        return self._assessor().members(self.record.get(i, "train"), self.record.get(i, "explore"),
                                        self.start_structure(), iter_dir(self.out, i),
                                        ref.get("value_eV"))

    def _assess(self, last: int, ref: dict[str, Any]) -> None:
        """After the loop: the transfer test on every molecule, every other architecture on
        the final data (each once; a changed setting under a recorded name is an error)."""
        a = self.cfg.assess
        best = Path(self.record.get(last, "train")["best_dir"]) / "model.pt"
        data = iter_dir(self.out, last) / "data.extxyz"
        for kind, items, step in (("molecules", a.molecules, "molecule"),
                                  ("architectures", a.architectures, "architecture")):
            for item in items:
                done = self.record.get(last, f"{step}:{item.name}")
                if done is not None:
                    check_unchanged(done, item, kind)
                    continue
                if step == "molecule":
                    self._step(last, f"{step}:{item.name}", self._assessor().molecule, item, best)
                else:
                    self._step(last, f"{step}:{item.name}", self._assessor().architecture, item,
                               data, self.start_structure(), ref.get("value_eV"),
                               ref.get("values_eV"))

    # ---- report --------------------------------------------------------------------------
    def _write_report(self) -> None:
        from potlab.learn.report import write_report

        write_report(self.out)


def run_learning(cfg: LearnConfig, out: str | Path, scheduler: str | None = None,
                 on_step: Callable[[int, str, dict[str, Any]], None] | None = None) -> LearnResult:
    """Run (or resume) the active-learning loop ``cfg`` describes in ``out``."""
    return LearningLoop(cfg, out, scheduler=scheduler, on_step=on_step).run()
