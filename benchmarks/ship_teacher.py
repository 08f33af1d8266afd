"""Ship the reference trajectories of a study preset inside the package.

    potlab study run li_conductors --preset quick-teacher --stages reference --out runs/qt
    python benchmarks/ship_teacher.py runs/qt

copies every ``reference/<material>/T<T>K_r<r>/trajectory.extxyz`` of the run (gzip) to
``src/potlab/studies/data/li_conductors/teacher/quick/<material>/T<T>K_r<r>.extxyz.gz`` and
writes ``PROVENANCE.json`` beside them: the preset, the protocol and seed of every run, its
speed and stability from ``result.json``, the package versions and the command. The ``quick``
preset imports these files as its reference (``reference.source: files``).

``--only MATERIAL ...`` ships those materials only. Runs listed in PROVENANCE.json that are
not shipped again are kept (each run records the potlab commit it was shipped from and how
it was made), so a run folder holding only some runs (a temperature added later) adds them.

``--runs DIR`` takes run folders laid out as ``DIR/<material>/T<T>K_r<r>/`` made by
``potlab.studies.jobs.md_job`` directly; the script checks that their protocol and seeds are
the ones the preset's reference stage plans.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import shutil
import subprocess
from pathlib import Path

from potlab.studies import load_study
from potlab.studies.config import bundled_studies
from potlab.studies.plan import build_plan

DEST = Path(__file__).resolve().parents[1] / "src/potlab/studies/data/li_conductors/teacher/quick"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study_dir", nargs="?", help="a study directory with a finished reference stage")
    ap.add_argument("--runs", help="run folders DIR/<material>/T<T>K_r<r> (instead of a study dir)")
    ap.add_argument("--preset", default="quick-teacher")
    ap.add_argument("--note", default="", help="a remark stored in PROVENANCE.json")
    ap.add_argument("--only", nargs="+", metavar="MATERIAL",
                    help="ship these materials only; the other runs in PROVENANCE.json are kept")
    ap.add_argument("--made-by", default="potlab study run li_conductors --preset quick-teacher "
                    "--stages reference")
    args = ap.parse_args()
    study = load_study(bundled_studies()["li_conductors"], preset=args.preset)
    jobs = [j for j in build_plan(study, Path("/nonexistent")) if j.stage == "reference"]
    DEST.mkdir(parents=True, exist_ok=True)
    runs = []
    for job in jobs:
        _, mat, run = job.key.split("/")
        if args.only and mat not in args.only:
            continue
        src = (Path(args.runs) / mat / run) if args.runs else (Path(args.study_dir) / job.key)
        if not (src / "result.json").exists():
            print(f"{job.key}: no finished run in {src}, not shipped")
            continue
        res = json.loads((src / "result.json").read_text())
        if float(res["temperature_K"]) != job.payload["temperature_K"] or res["seed"] != job.payload["seed"]:
            raise SystemExit(f"{src}: temperature/seed differ from the plan's {job.key}")
        (DEST / mat).mkdir(exist_ok=True)
        out = DEST / mat / f"{run}.extxyz.gz"
        with open(src / "trajectory.extxyz", "rb") as fh, gzip.open(out, "wb", compresslevel=9) as gz:
            shutil.copyfileobj(fh, gz)
        runs.append({"file": str(out.relative_to(DEST)), "material": mat,
                     "temperature_K": res["temperature_K"], "seed": res["seed"],
                     "steps": res["steps"], "time_ps": res["time_ps"],
                     "steps_per_s": res["steps_per_s"], "stability": res["stability"]})
    versions = {}
    for p in ("potlab", "chgnet", "torch", "ase", "numpy"):
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            versions[p] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    for r in runs:
        r["potlab_commit"] = commit
    made_by = args.made_by
    old = DEST / "PROVENANCE.json"
    if old.exists():  # keep the runs shipped before that are not replaced now
        before = json.loads(old.read_text())
        shipped = {r["file"] for r in runs}
        for r in before.get("runs", []):
            r.setdefault("potlab_commit", before.get("potlab_commit", "unknown"))
        for r in runs:
            r["made_by"] = args.made_by
        runs = [r for r in before.get("runs", []) if r["file"] not in shipped] + runs
        commit = before.get("potlab_commit", commit)
        made_by = before.get("made_by", made_by)
    prov = {"what": "CHGNet reference trajectories of the li_conductors quick and standard presets",
            "made_by": made_by, "preset": args.preset, "method": study.reference.method,
            "protocol": study.md, "structures": {k: Path(m.structure).name
                                                 for k, m in study.materials.items()},
            "versions": versions, "potlab_commit": commit, "threads_per_run": 1, "runs": runs,
            "licence": "made by potlab (MIT); structures: see ../../structures/",
            "note": args.note}
    (DEST / "PROVENANCE.json").write_text(json.dumps(prov, indent=1))
    print(f"wrote {len(runs)} trajectories and PROVENANCE.json to {DEST}")


if __name__ == "__main__":
    main()
