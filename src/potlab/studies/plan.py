"""A study as a graph of jobs, each with the hash of everything it depends on.

Stages and their jobs (folders under the study directory)::

    reference/<material>/T<temp>K_r<repeat>     teacher MD, or the user's trajectory, imported
    data/<material>                             labelled frames drawn from them, one split
    train/<model>_s<seed>                       one trainer, equal budgets
    evaluate/<model>_s<seed>                    force/energy errors per material
    md/<model>_s<seed>/<material>/T<temp>K_r<r> the reference's protocol
    analyze/<run>/<material>                    RDF, t_stab, D, sigma, Arrhenius, paths
    report                                      results.json, report.md, report.html

A job's hash covers its own settings, the hashes of the jobs it reads, the content of the
input files it reads (not their paths: a study directory or an installed package moved
elsewhere stays current) and the versions of the packages that compute it. Changing one model's
learning rate changes the hash of that model's training, so its evaluation, MD and analysis,
and the report, and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potlab.md.protocol import run_dir_name, run_settings
from potlab.studies.config import Study

STAGES = ("reference", "data", "train", "evaluate", "md", "analyze", "report")
TEACHER = "teacher"


@dataclass
class Job:
    key: str  # also the folder, relative to the study directory
    stage: str
    kind: str
    payload: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)  # files whose content the job reads
    packages: tuple[str, ...] = ("potlab", "torch", "ase", "numpy")
    soft: bool = False  # runs when its dependencies have ended, done or not
    hash: str = ""


@functools.lru_cache(maxsize=64)
def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "none"


@functools.lru_cache(maxsize=256)
def file_hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _hash(job: Job, dep_hashes: dict[str, str]) -> str:
    from potlab.data import DataError

    files = []  # by content, not by path: a moved study or package keeps its hashes
    for p in job.inputs:
        if not Path(p).exists():
            raise DataError(p, f"no such file (needed by {job.key})")
        files.append(file_hash(p))
    text = json.dumps({"kind": job.kind, "settings": job.settings, "deps": dep_hashes,
                       "files": files, "versions": {p: _version(p) for p in job.packages}},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _method_package(method: str) -> str:
    return {"chgnet": "chgnet", "sevennet": "sevenn", "gfn1-xtb": "tblite",
            "gfn2-xtb": "tblite"}.get(method, method.split(":", 1)[0].split(".", 1)[0])


def run_key(model: str, seed: int) -> str:
    return f"{model}_s{seed}"


def build_plan(study: Study, out: Path) -> list[Job]:
    """Every job of ``study`` in dependency order, with hashes."""
    out = Path(out)
    protocol = study.protocol()
    md_settings = protocol.model_dump()
    # what one run depends on: not the study's list of temperatures or its repeat count
    # (each job has its own temperature and seed), so adding a temperature adds jobs and
    # keeps the others current
    run_md = run_settings(protocol)
    if protocol.engine == "batched":  # the batched engine runs potlab potentials, not teachers
        md_settings, run_md = {**md_settings, "engine": "ase"}, {**run_md, "engine": "ase"}
    ref = study.reference
    jobs: list[Job] = []

    # reference
    ref_keys: dict[str, list[str]] = {}
    for mat_name, mat in study.materials.items():
        ref_keys[mat_name] = []
        temps = protocol.temperatures_K
        for temp, r in study.reference_runs(mat_name):
            key = f"reference/{mat_name}/{run_dir_name(temp, r)}"
            if ref.source == "teacher":
                i = temps.index(temp)
                payload = {"structure": mat.structure, "supercell": mat.supercell,
                           "calculator": {"method": ref.method, "settings": ref.settings},
                           "protocol": md_settings, "temperature_K": temp,
                           "seed": protocol.seed + 1000 * i + r, "tolerate_errors": False}
                job = Job(key, "reference", "md", payload,
                          settings={"material": mat.model_dump(exclude={"structure"}),
                                    "method": ref.method,
                                    "method_settings": ref.settings, "md": run_md,
                                    "temperature_K": temp, "seed": payload["seed"]},
                          inputs=[mat.structure],
                          packages=("potlab", "torch", "ase", "numpy", _method_package(ref.method)))
            else:
                spec = next(t for t in ref.trajectories[mat_name] if t.temperature_K == temp)
                payload = {"file": spec.files[r], "temperature_K": temp,
                           "frame_interval_fs": ref.frame_interval_fs,
                           "energy_key": ref.energy_key, "forces_key": ref.forces_key,
                           "stress_key": ref.stress_key}
                job = Job(key, "reference", "import_reference", payload,
                          settings={k: v for k, v in payload.items() if k != "file"},
                          inputs=[spec.files[r]])
            jobs.append(job)
            ref_keys[mat_name].append(key)

    # data: labelled frames and one split per material
    d = study.data
    for mat_name in study.materials:
        is_train = mat_name in d.train_materials
        data_runs = [k for k, (temp, _) in zip(ref_keys[mat_name], study.reference_runs(mat_name))
                     if d.temperatures_K is None or float(temp) in d.temperatures_K]
        payload = {"material": mat_name, "runs": data_runs, "every": d.every,
                   "n_train": d.n_train if is_train else 0, "n_valid": d.n_valid if is_train else 0,
                   "n_test": d.n_test, "seed": d.seed, "skip_first": True}
        jobs.append(Job(f"data/{mat_name}", "data", "data", payload, deps=list(data_runs),
                        settings=payload))

    # train / evaluate / md / analyze per model and seed
    md_mats = study.md_material_names()
    runs: list[str] = []
    for m in study.train.models:
        for seed in study.train.seeds:
            rk = run_key(m.key, seed)
            runs.append(rk)
            training = {**study.train.training, **m.training, "seed": seed}
            model = {"name": m.name, **m.params()}
            payload = {"model": model, "training": training,
                       "train": [f"data/{x}/train.extxyz" for x in d.train_materials],
                       "valid": [f"data/{x}/valid.extxyz" for x in d.train_materials]}
            jobs.append(Job(f"train/{rk}", "train", "train", payload,
                            deps=[f"data/{x}" for x in d.train_materials],
                            settings={"model": model, "training": training}))
            jobs.append(Job(f"evaluate/{rk}", "evaluate", "evaluate",
                            {"model_file": f"train/{rk}/model.pt", "materials": list(study.materials)},
                            deps=[f"train/{rk}", *(f"data/{x}" for x in study.materials)],
                            settings={"materials": list(study.materials)}))
            for mat_name in md_mats:
                md_jobs, md_keys = _md_jobs(study, rk, mat_name)
                jobs += md_jobs
                jobs.append(_analyze_job(study, rk, mat_name, md_keys,
                                         deps=[j.key for j in md_jobs]))

    for mat_name in md_mats:
        jobs.append(_analyze_job(study, TEACHER, mat_name, ref_keys[mat_name]))

    analyze_keys = [j.key for j in jobs if j.stage == "analyze"]
    report_deps = [j.key for j in jobs if j.stage in ("train", "evaluate")] + analyze_keys
    jobs.append(Job("report", "report", "report",
                    {"runs": runs, "materials": list(study.materials), "md_materials": md_mats},
                    deps=report_deps, settings={"study": study.model_dump(exclude={"presets"})},
                    soft=True, packages=("potlab", "matplotlib", "scipy", "numpy")))
    jobs = _order(jobs)
    by_key = {}
    for job in jobs:
        job.hash = _hash(job, {k: by_key[k].hash for k in job.deps})
        by_key[job.key] = job
    return jobs


def _md_jobs(study: Study, rk: str, mat_name: str) -> tuple[list[Job], list[str]]:
    """The MD jobs of trained model ``rk`` on one material and the run folders they write:
    one job per temperature x repeat, or with ``md.engine: batched`` one job running them
    all as replicas of the batched engine (one model call per step)."""
    protocol = study.protocol()
    md_settings, run_md = protocol.model_dump(), run_settings(protocol)
    mat = study.materials[mat_name]
    common = {"structure": mat.structure, "supercell": mat.supercell,
              "calculator": {"model": f"train/{rk}/model.pt"}, "protocol": md_settings,
              "tolerate_errors": True}
    replicas = [{"temperature_K": temp, "repeat": r, "seed": protocol.seed + 1000 * i + r}
                for i, temp in enumerate(protocol.temperatures_K) for r in range(protocol.repeats)]
    keys = [f"md/{rk}/{mat_name}/{run_dir_name(x['temperature_K'], x['repeat'])}" for x in replicas]
    settings = {"supercell": mat.supercell, "protocol": run_md, "tolerate_errors": True}
    if protocol.engine == "batched":
        job = Job(f"md/{rk}/{mat_name}", "md", "md_batched", {**common, "replicas": replicas},
                  deps=[f"train/{rk}"], settings={**settings, "replicas": replicas},
                  inputs=[mat.structure])
        return [job], keys
    jobs = [Job(key, "md", "md",
                {**common, "temperature_K": x["temperature_K"], "seed": x["seed"]},
                deps=[f"train/{rk}"], inputs=[mat.structure],
                settings={**settings, "temperature_K": x["temperature_K"], "seed": x["seed"]})
            for key, x in zip(keys, replicas)]
    return jobs, keys


def _analyze_job(study: Study, rk: str, mat_name: str, run_keys: list[str],
                 deps: list[str] | None = None) -> Job:
    deps = list(run_keys if deps is None else deps)
    payload = {"run": rk, "material": mat_name, "runs": run_keys,
               "analyze": study.analyze.model_dump(), "protocol": study.md}
    if rk != TEACHER:
        deps.append(f"analyze/{TEACHER}/{mat_name}")
        payload["teacher"] = f"analyze/{TEACHER}/{mat_name}"
    return Job(f"analyze/{rk}/{mat_name}", "analyze", "analyze", payload, deps=deps,
               settings={"analyze": study.analyze.model_dump(), "material": mat_name},
               packages=("potlab", "numpy", "scipy", "pymatgen-analysis-diffusion", "ase"))


def _order(jobs: list[Job]) -> list[Job]:
    """Topological order (dependencies first), stable within a level."""
    by_key = {j.key: j for j in jobs}
    level: dict[str, int] = {}

    def lv(k: str) -> int:
        if k not in level:
            job = by_key[k]
            level[k] = 1 + max((lv(d) for d in job.deps), default=-1)
        return level[k]

    for j in jobs:
        for d in j.deps:
            if d not in by_key:
                raise ValueError(f"job {j.key} depends on unknown job {d}")
        lv(j.key)
    return sorted(jobs, key=lambda j: level[j.key])
