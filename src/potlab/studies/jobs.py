"""The jobs a study runs, as module-level functions of plain data, so that they pickle to
local worker processes and to Dask workers alike.

Each ``<kind>_task(payload, job_dir, root)`` writes into ``job_dir`` and returns a small
JSON-able summary; paths in the payload are relative to the study directory ``root``. A
killed job resumes from what its directory holds (the trainer's and the MD runner's own
checkpoints).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def set_threads(n: int | None) -> None:
    """Limit this worker to ``n`` threads (torch and OpenMP), so that parallel jobs on a small
    machine do not oversubscribe it."""
    if not n:
        return
    os.environ["OMP_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(int(n))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(n))
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


def read_structure(path: str | Path, supercell: list[int] | None = None):
    """The first frame of any file ``ase.io.read`` reads, optionally repeated."""
    import ase.io

    from potlab.data import DataError

    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such structure file")
    try:
        atoms = ase.io.read(path, index=0)
    except Exception as err:  # noqa: BLE001 - any reader failure is bad input here
        raise DataError(path, f"cannot read a structure: {err}") from None
    atoms.calc = None
    if supercell:
        atoms = atoms.repeat(tuple(int(x) for x in supercell))
    return atoms


def make_calculator(spec: dict[str, Any], atoms=None):
    """An ASE calculator from ``{"model": FILE}`` (a potlab potential; ``dtype`` and
    ``device`` optional) or ``{"method": NAME, "settings": {...}}`` (chgnet, sevennet,
    gfn1-xtb, module:Class), through the one calculator resolution every command uses
    (:mod:`potlab.calculators`)."""
    from potlab.calculators import resolve_calculator

    if "model" in spec:
        return resolve_calculator(spec["model"], dtype=spec.get("dtype"), device=spec.get("device"))
    return resolve_calculator(spec["method"], spec.get("settings") or {}, atoms=atoms)


def md_job(spec: dict[str, Any]) -> dict[str, Any]:
    """One MD run from a flat spec (``out`` holds the directory); see :func:`md_task`."""
    set_threads(spec.get("threads"))
    return md_task(spec, Path(spec["out"]), Path("."))


# ---- reference ----------------------------------------------------------------------------

def md_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """One MD run (teacher or trained model) with the study's protocol; resumes a killed run.

    With ``tolerate_errors`` (trained models) an exception from the calculator mid-run (a
    potential that has blown up far enough to break the neighbour list) is recorded as an
    instability at the last stored frame, not as a failed job.
    """
    from potlab.md import parse_protocol, run_md

    calc_spec = dict(p["calculator"])
    protocol = parse_protocol(p["protocol"], source=f"{job_dir}: protocol")
    if "model" in calc_spec:
        calc_spec["model"] = str(root / calc_spec["model"])
        if protocol.device is not None:  # the study's md.device places the trained models
            calc_spec.setdefault("device", protocol.device)
    atoms = read_structure(p["structure"], p.get("supercell"))
    calc = make_calculator(calc_spec, atoms)
    if hasattr(calc, "reset"):
        # foundation-model calculators are cached per process: start from a clean state
        calc.reset()
    from contextlib import nullcontext

    from potlab.quiet import third_party_output

    # a teacher's own warnings (CHGNet warns on every call) go to the debug log
    quiet = third_party_output() if "method" in calc_spec else nullcontext()
    try:
        with quiet:
            res = asdict(run_md(atoms, calc, protocol, job_dir, temperature_K=p["temperature_K"],
                                seed=p["seed"], resume=True))
    except Exception as err:  # a model's exploded MD is a result, not a failed job
        if not p.get("tolerate_errors"):
            raise
        res = _crashed_result(job_dir, p, protocol, err)
    res = json.loads(json.dumps(res, default=float))
    return {"stability": res["stability"], "steps": res["steps"], "time_ps": res["time_ps"],
            "steps_per_s": res["steps_per_s"], "ns_per_day": res["ns_per_day"]}


def md_batched_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """Every temperature x repeat of one trained model on one material (``md.engine:
    batched``): the replicas advance together, one model call per step, each in its own
    ``T<temp>K_r<repeat>/`` folder with what :func:`md_task` writes there. A calculator
    failure (a replica's coordinates exploded) stops the batch; the replicas then go on one
    at a time from their checkpoints, so only the one that fails is recorded as crashed."""
    from potlab.md import parse_protocol
    from potlab.md.batched import run_batched
    from potlab.md.protocol import run_dir_name

    protocol = parse_protocol(p["protocol"], source=f"{job_dir}: protocol")
    calc = make_calculator({"model": str(root / p["calculator"]["model"]),
                            "device": protocol.device})
    atoms = read_structure(p["structure"], p.get("supercell"))
    reps = [(atoms, job_dir / run_dir_name(x["temperature_K"], x["repeat"]), x["temperature_K"],
             x["seed"]) for x in p["replicas"]]
    try:
        results = [asdict(r) for r in run_batched(reps, calc, protocol, resume=True)]
    except Exception as err:  # which replica failed is found one by one
        if not p.get("tolerate_errors"):
            raise
        log.warning("%s: the batch stopped (%s); the replicas go on one at a time", job_dir, err)
        results = []
        for rep, x in zip(reps, p["replicas"]):
            try:
                results.append(asdict(run_batched([rep], calc, protocol, resume=True)[0]))
            except Exception as err1:  # noqa: BLE001 - a model's exploded MD is a result
                results.append(_crashed_result(rep[1], x, protocol, err1))
    results = json.loads(json.dumps(results, default=float))
    return {run_dir_name(x["temperature_K"], x["repeat"]):
            {"stability": r["stability"], "steps": r["steps"], "time_ps": r["time_ps"],
             "steps_per_s": r["steps_per_s"], "ns_per_day": r["ns_per_day"]}
            for x, r in zip(p["replicas"], results)}


def _crashed_result(job_dir: Path, p: dict, protocol, err: Exception) -> dict[str, Any]:
    from potlab.atomic import write_text_atomic

    t_ps, step = 0.0, 0
    log_path = job_dir / "md_log.csv"
    if log_path.exists():
        with open(log_path) as fh:
            rows = list(csv.DictReader(fh))
        if rows:
            t_ps, step = float(rows[-1]["time_ps"]), int(rows[-1]["step"])
    reason = f"calculator failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    res = {"out_dir": str(job_dir), "temperature_K": p["temperature_K"], "seed": p["seed"],
           "steps": step, "time_ps": t_ps, "final_temperature_K": float("nan"),
           "steps_per_s": float("nan"), "ns_per_day": float("nan"),
           "stability": {"t_stab_ps": t_ps, "reason": reason, "step": step, "stable": False,
                         "monitor": "calculator"},
           "activation_energy_eV": None, "extra": {}}
    write_text_atomic(json.dumps(res, indent=1), job_dir / "result.json")
    return res


def import_reference_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """The user's own reference trajectory (any file ``ase.io.read`` reads: extxyz, OUTCAR,
    vasprun.xml) checked and copied into the study's layout (``trajectory.extxyz`` with
    ``info['time_fs']``, energies and forces; ``result.json``). Every frame needs an energy
    and forces, except frame 0 (an MD output's unlabelled starting structure)."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    from potlab.atomic import atomic_path, write_text_atomic
    from potlab.data import DataError

    path = Path(p["file"])
    if not path.exists():
        raise DataError(path, "no such reference trajectory")
    try:
        frames = ase.io.read(path, index=":")
    except Exception as err:  # noqa: BLE001
        raise DataError(path, f"cannot read a trajectory: {err}") from None
    if len(frames) < 3:
        raise DataError(path, f"{len(frames)} frames; a reference trajectory needs at least 3")
    dt = p.get("frame_interval_fs")
    out = []
    for k, a in enumerate(frames):
        # frame 0 of an MD output is often the unlabelled starting structure
        energy = _label(a, p["energy_key"], "energy", path, k, scalar=True, required=k > 0)
        forces = _label(a, p["forces_key"], "forces", path, k, required=k > 0)
        stress = _label(a, p["stress_key"], "stress", path, k, required=False)
        if "time_fs" not in a.info:
            if dt is None:
                raise DataError(path, "no info['time_fs']: set "
                                "reference.frame_interval_fs (fs between stored frames)",
                                frame=k, field="time_fs")
            a.info["time_fs"] = k * dt
        a.info.setdefault("step", k)
        a.info["phase"] = "production"
        b = a.copy()
        kept = {k2: v for k2, v in (("energy", energy), ("forces", forces), ("stress", stress))
                if v is not None}
        if kept:
            b.calc = SinglePointCalculator(b, **kept)
        out.append(b)
    with atomic_path(job_dir / "trajectory.extxyz", suffix=".extxyz") as tmp:
        ase.io.write(tmp, out, format="extxyz")
    t_ps = float(out[-1].info["time_fs"]) / 1000
    res = {"out_dir": str(job_dir), "temperature_K": p["temperature_K"], "source": str(path),
           "steps": len(out), "time_ps": t_ps, "steps_per_s": float("nan"),
           "ns_per_day": float("nan"),
           "stability": {"t_stab_ps": t_ps, "reason": None, "step": None, "stable": True,
                         "monitor": None}}
    write_text_atomic(json.dumps(res, indent=1), job_dir / "result.json")
    return {"frames": len(out), "time_ps": t_ps, "stability": res["stability"]}


def _label(atoms, key: str, kind: str, path: Path, k: int, scalar: bool = False,
           required: bool = True):
    from potlab.data import DataError

    value = None
    calc = atoms.calc
    if calc is not None and kind in getattr(calc, "results", {}) and key == kind:
        value = calc.results[kind]
    elif key in atoms.info:
        value = atoms.info[key]
    elif key in atoms.arrays:
        value = atoms.arrays[key]
    if value is None:
        if required:
            raise DataError(path, f"no {kind} (reference.{kind}_key); a reference "
                            f"trajectory needs {kind}", frame=k, field=key)
        return None
    value = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(value)):
        raise DataError(path, "contains NaN or inf", frame=k, field=key)
    return float(value) if scalar else value


# ---- data ---------------------------------------------------------------------------------

def data_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """Labelled frames from the reference runs of one material: every ``every``-th stored
    frame after the first, labels from the reference, one random split (the same for every
    model) into train / valid / test."""
    import ase.io

    from potlab.data import DataError, write_extxyz
    from potlab.data.keys import CONFIG_TYPE_KEY, REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY

    pool = []
    for run in p["runs"]:
        path = root / run / "trajectory.extxyz"
        frames = ase.io.read(path, index=":")
        for k, a in enumerate(frames):
            if p.get("skip_first", True) and k == 0:
                continue
            if k % p["every"]:
                continue
            res = getattr(a.calc, "results", {}) if a.calc is not None else {}
            if "energy" not in res or "forces" not in res:
                raise DataError(path, "no reference energy and forces", frame=k)
            b = a.copy()
            b.calc = None
            b.info = {REF_ENERGY_KEY: float(res["energy"]), CONFIG_TYPE_KEY: p["material"],
                      "source_run": run, "time_fs": float(a.info.get("time_fs", 0.0)),
                      "temperature_K": _run_temperature(root / run)}
            b.arrays = {k2: v for k2, v in b.arrays.items() if k2 in ("numbers", "positions")}
            b.arrays[REF_FORCES_KEY] = np.asarray(res["forces"], dtype=float)
            if "stress" in res:
                b.info[REF_STRESS_KEY] = np.asarray(res["stress"], dtype=float)
            pool.append(b)
    need = p["n_train"] + p["n_valid"] + p["n_test"]
    if len(pool) < need:
        raise DataError(f"data/{p['material']}", f"the reference runs give {len(pool)} frames "
                        f"(every {p['every']}-th stored frame), the split needs {need} "
                        "(data.n_train + n_valid + n_test)")
    order = np.random.default_rng(p["seed"]).permutation(len(pool))
    parts = {"train": order[:p["n_train"]],
             "valid": order[p["n_train"]:p["n_train"] + p["n_valid"]],
             "test": order[p["n_train"] + p["n_valid"]:need]}
    counts = {}
    for name, idx in parts.items():
        if len(idx):
            write_extxyz(job_dir / f"{name}.extxyz", [pool[i] for i in sorted(idx)])
        counts[name] = len(idx)
    return {"pool": len(pool), **counts}


def _run_temperature(run_dir: Path) -> float:
    res = json.loads((run_dir / "result.json").read_text())
    return float(res["temperature_K"])


# ---- train and evaluate -------------------------------------------------------------------

def train_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """Train one model with one seed on the study's split (the one trainer)."""
    from potlab.report.plots import training_curve
    from potlab.train import parse_config, train

    cfg = parse_config({"data": {"train": [str(root / x) for x in p["train"]],
                                 "valid": [str(root / x) for x in p["valid"]],
                                 "energy_key": "REF_energy", "forces_key": "REF_forces",
                                 "stress_key": "REF_stress"},
                        "model": p["model"], "training": p["training"], "out": str(job_dir)},
                       source=f"{job_dir}: train")
    res = train(cfg)
    import potlab

    pot = potlab.load(job_dir / "model.pt")
    n_params = int(sum(x.numel() for x in pot.model.parameters()))
    try:
        training_curve(job_dir / "metrics.csv", job_dir / "training_curve.png",
                       title=job_dir.name)
    except (OSError, KeyError, ValueError):  # pragma: no cover - a curve is a nicety
        pass
    return {"epochs": res.epochs, "best_epoch": res.best_epoch, "stop_reason": res.stop_reason,
            "n_params": n_params, "train_time_s": float(res.metrics.get("elapsed_s", float("nan"))),
            "best_valid_loss": res.best_valid_loss}


def evaluate_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    """Force and energy errors of one trained model on each material's held-out frames."""
    import potlab
    from potlab.analysis.errors import evaluate
    from potlab.data import read_frames

    pot = potlab.load(root / p["model_file"])
    out = {}
    for mat in p["materials"]:
        frames = read_frames(root / "data" / mat / "test.extxyz")
        metrics, arrays = evaluate(pot, frames)
        np.savez_compressed(job_dir / f"parity_{mat}.npz", **arrays)
        out[mat] = metrics["overall"]
    (job_dir / "metrics.json").write_text(json.dumps(out, indent=1))
    return out


# ---- analyze and report -------------------------------------------------------------------

def analyze_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    from potlab.studies.judge import judge_runs

    return judge_runs(p, job_dir, root)


def report_task(p: dict[str, Any], job_dir: Path, root: Path) -> dict[str, Any]:
    from potlab.studies.results import write_results

    return write_results(p, job_dir, root)
