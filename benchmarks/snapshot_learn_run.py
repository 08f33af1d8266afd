"""Copy what a finished (or stopped) ``potlab learn`` run's numbers are made of into a
folder that is committed, since run folders do not outlive the machine:

    .venv/bin/python benchmarks/snapshot_learn_run.py runs/hexane_bench/ani3_batched16_11 \
        docs/results/hexane-learn/ani3_batched16_11 [--compare NAME=DIR ...]

Writes the run's report again (``potlab.learn.report.write_report``), then copies
``record.jsonl``, ``config.json``, ``setup/start.extxyz`` (the start structure: its bond
graph tells which pulls took the reference's channel), ``report.md`` and its plots,
``potlab learn status``'s table as ``status.txt``, the run's ``pull_noise/*.csv|png`` (``benchmarks/hexane_pull_noise.py``)
and writes ``comparison.md`` (``potlab learn compare``) of this run beside the ``--compare``
runs (snapshots hold the record compare reads). Copies, never moves: the run still resumes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main() -> int:
    from potlab.learn import learn_status
    from potlab.learn.compare import compare_runs
    from potlab.learn.report import write_report
    from potlab.learn.status import status_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--name", default=None, help="the run's name in comparison.md "
                    "(default: the run folder's name)")
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME=DIR")
    args = ap.parse_args()
    run, out = args.run_dir, args.out
    if not (run / "record.jsonl").is_file():
        print(f"error: {run}: no record.jsonl (not a potlab learn run)", file=sys.stderr)
        return 2
    others = {}
    for item in args.compare:
        name, sep, d = item.partition("=")
        if not sep or not (Path(d) / "record.jsonl").is_file():
            print(f"error: --compare {item}: want NAME=DIR with DIR/record.jsonl", file=sys.stderr)
            return 2
        others[name] = Path(d)
    out.mkdir(parents=True, exist_ok=True)
    write_report(run)
    copied = []
    for pattern in ("record.jsonl", "config.json", "report.md", "*.png",
                    "pull_noise/*.csv", "pull_noise/*.png"):
        for f in sorted(run.glob(pattern)):
            shutil.copy2(f, out / f.name)
            copied.append(f.name)
    start = run / "setup" / "start.extxyz"  # its bond graph: which pulls took the reference's channel
    if start.is_file():
        (out / "setup").mkdir(exist_ok=True)
        shutil.copy2(start, out / "setup" / start.name)
        copied.append("setup/start.extxyz")
    (out / "status.txt").write_text(status_table(learn_status(run)) + "\n")
    compare_runs({args.name or run.name: run, **others}, out)
    print(f"{out}: {', '.join(copied)}, status.txt, comparison.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
