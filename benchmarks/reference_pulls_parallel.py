"""How much the reference's pulls gain from running side by side: the bundled hexane
config's steered protocol pulled ``--repeats`` times with GFN2-xTB, first in this process
(workers 1, one after another), then on ``--workers`` processes (one thread each), as
``potlab learn`` runs its reference (``reference.workers``). Both from the same unrelaxed
RDKit conformer and the same seeds, so the two sets of barriers must be equal (exit 1 if
they differ by more than 1e-9 kcal/mol).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reference_pulls_parallel.py \
        [--repeats 4] [--workers 2] [--steps 6500] [--out runs/reference_pulls_parallel]

Prints the wall time of each, the speed-up and the largest difference of the barriers
(kcal/mol); writes them to ``OUT/timing.json``. Each mode starts from an empty folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")


def main() -> int:
    import numpy as np
    import yaml

    from potlab.learn.config import BUNDLED, parse_learn_config
    from potlab.learn.explorers import SteeredExplorer
    from potlab.learn.selectors import KCAL_MOL_IN_EV
    from potlab.learn.setup import make_structure
    from potlab.reference import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6500)
    ap.add_argument("--out", default="runs/reference_pulls_parallel")
    args = ap.parse_args()
    if args.repeats < 1 or args.steps < 1 or args.workers < 2:
        ap.error("--repeats and --steps must be at least 1, --workers at least 2")  # exit 2

    path = BUNDLED / "hexane.yaml"
    raw = yaml.safe_load(path.read_text())
    raw.pop("presets", None)
    raw["explore"]["protocol"] |= {"repeats": args.repeats, "steps": args.steps}
    cfg = parse_learn_config(raw, source=str(path), base_dir=path.parent)
    start = make_structure(cfg.structure, lambda p: path.parent / p)
    method = get_method(cfg.reference.method, cfg.reference.settings)
    explorer = SteeredExplorer(cfg.protocol())
    out = Path(args.out)
    times, values = {}, {}
    for workers in (1, args.workers):
        d = out / f"workers_{workers}"
        shutil.rmtree(d, ignore_errors=True)
        t0 = time.perf_counter()
        exp = explorer.run(start, method.calculator(start), d, make_calculator=method.calculator,
                           workers=workers)
        times[workers] = time.perf_counter() - t0
        values[workers] = np.asarray(exp.tracked_each, float) / KCAL_MOL_IN_EV
        print(f"workers {workers}: {times[workers]:.1f} s for {args.repeats} pulls of "
              f"{args.steps} steps; barriers {np.round(values[workers], 4).tolist()} kcal/mol")
    diff = float(np.abs(values[1] - values[args.workers]).max())
    result = {"repeats": args.repeats, "steps": args.steps, "workers": args.workers,
              "seconds_serial": times[1], "seconds_parallel": times[args.workers],
              "speedup": times[1] / times[args.workers], "max_barrier_difference_kcal_mol": diff,
              "barriers_kcal_mol": values[1].tolist(), "cpus": os.cpu_count()}
    (out / "timing.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"speed-up {result['speedup']:.2f}x on {args.workers} workers; largest barrier "
          f"difference {diff:.2e} kcal/mol; {out / 'timing.json'}")
    if diff > 1e-9:  # the same seeds: a worker's pull must be the one this process makes
        print(f"error: the pulls on {args.workers} workers differ from the serial ones")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
