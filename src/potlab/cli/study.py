"""``potlab study run|status|report``: declarative studies (thin over :mod:`potlab.studies`)."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser("study", help="run a study: reference -> train -> evaluate -> md "
                              "-> analyze -> report, resumable")
    sub = p.add_subparsers(dest="study_command", required=True)
    r = sub.add_parser("run", help="run (or resume) a study YAML")
    r.add_argument("study", help="a study YAML, or a bundled study's name (potlab study list)")
    r.add_argument("--preset", help="a preset of the study (quick, standard, full)")
    r.add_argument("--out", help="study directory (default runs/<study name>[-<preset>])")
    r.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786)")
    r.add_argument("--workers", type=int, help="local worker processes (default: CPUs)")
    r.add_argument("--stages", nargs="+", help="run only these stages (reference data train "
                   "evaluate md analyze report)")
    r.set_defaults(func=run)
    s = sub.add_parser("status", help="one line per job: done / running / pending / failed")
    s.add_argument("dir")
    s.add_argument("--all", action="store_true", help="list done jobs too (default: a count)")
    s.set_defaults(func=status)
    t = sub.add_parser("report", help="(re)write report.md, report.html and results.json")
    t.add_argument("dir")
    t.set_defaults(func=report)
    c = sub.add_parser("copy", help="copy a bundled study YAML to edit (comments kept)")
    c.add_argument("study", help="a bundled study's name, or a study YAML")
    c.add_argument("dest", help="the new YAML file")
    c.set_defaults(func=copy)
    ls = sub.add_parser("list", help="the bundled studies and their presets")
    ls.set_defaults(func=list_studies)
    return p


def run(args) -> int:
    from potlab.studies import load_study, run_study
    from potlab.studies.config import resolve_study_path

    path = resolve_study_path(args.study)
    study = load_study(path, preset=args.preset)
    out = Path(args.out or f"runs/{study.name}" + (f"-{args.preset}" if args.preset else ""))
    res = run_study(study, out, scheduler=args.scheduler, workers=args.workers,
                    source=str(path), stages=args.stages)
    print(f"ran {len(res.ran)} jobs, {len(res.skipped)} already done, "
          f"{len(res.failed)} failed, {len(res.blocked)} blocked")
    for key, why in res.failed.items():
        print(f"  failed  {key}: {why}")
    for key, why in list(res.blocked.items())[:20]:
        print(f"  blocked {key}: {why}")
    if res.report is not None:
        print(f"report: {res.report}")
    return 1 if res.failed else 0


def status(args) -> int:
    from potlab.studies import study_status

    rows = study_status(args.dir)
    counts: dict[str, int] = {}
    for key, state, detail in rows:
        counts[state] = counts.get(state, 0) + 1
        if state != "done" or args.all:
            print(f"{state:<8} {key}" + (f"  ({detail})" if detail else ""))
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0


def report(args) -> int:
    from potlab.studies import write_study_report

    html = write_study_report(args.dir)
    print(f"report: {html}")
    return 0


def copy(args) -> int:
    from potlab.studies.config import copy_study

    dest = copy_study(args.study, args.dest)
    print(f"wrote {dest}; run it with: potlab study run {dest} --preset quick")
    return 0


def list_studies(args) -> int:
    import yaml

    from potlab.studies.config import bundled_studies

    for name, path in bundled_studies().items():
        raw = yaml.safe_load(path.read_text()) or {}
        presets = ", ".join(raw.get("presets", {})) or "none"
        print(f"{name}\t{path}\tpresets: {presets}")
    sys.stdout.flush()
    return 0
