"""Seconds per steered pull of a hexane learn run's best member: one pull on engine ase
against N pulls together on engine batched (one model call per step for all of them).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_pull_speed.py runs/hexane_bench/ani3_pulls3
        [--iteration K] [--steps 500] [--replicas 1 4 16 32]

Each pull is the run's explorer protocol (its spring, thermostat and timestep) cut to
``--steps`` steps, from the run's start structure, through potlab.md's run loop (files,
checkpoints and the steered log included), in a temporary directory. Prints wall seconds
per configuration, seconds per pull and the ratio to engine ase. Wall clock on whatever
else the machine is doing: say what ran beside it when quoting it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> int:
    import ase.io
    import torch

    import potlab
    from potlab.learn.config import LearnConfig
    from potlab.md.batched import run_batched
    from potlab.md.engine import Replica
    from potlab.md.runner import run_md

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, default=0)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 4, 16, 32])
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = args.run_dir
    committee = run / f"iter_{args.iteration:03d}" / "committee" / "committee.json"
    if not committee.exists():
        ap.error(f"{committee}: no trained committee for iteration {args.iteration}")
    info = json.loads(committee.read_text())
    best = info["members"][info["best_member"]]["member"]
    pot = potlab.load(committee.parent / f"member_{best}" / "model.pt")
    cfg = LearnConfig.model_validate({**json.loads((run / "config.json").read_text()),
                                      "base_dir": str(run)})
    p = cfg.protocol().model_copy(update={"steps": args.steps, "repeats": 1})
    start = ase.io.read(run / "setup" / "start.extxyz")
    T = p.temperatures_K[0]
    print(f"{run} iteration {args.iteration} member {best}: {len(start)} atoms, {args.steps} "
          f"steps of {p.timestep_fs} fs, {p.thermostat}, torch {torch.__version__}, 1 thread")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_md(start, pot.calculator(), p.model_copy(update={"engine": "ase"}), Path(tmp) / "ase")
        ase_s = time.perf_counter() - t0
        print(f"engine ase, 1 pull: {ase_s:.2f} s")
        for n in args.replicas:
            t0 = time.perf_counter()
            run_batched([Replica(start, Path(tmp) / f"b{n}_{k}", T, k) for k in range(n)], pot, p)
            sec = time.perf_counter() - t0
            print(f"engine batched, {n} pulls: {sec:.2f} s, {sec / n:.3f} s per pull, "
                  f"{ase_s / (sec / n):.2f}x fewer seconds per pull than engine ase")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
