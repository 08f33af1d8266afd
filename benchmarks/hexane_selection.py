"""Where does the loop look, and where would another uncertainty have looked? For iterations
K of a hexane learn run, bins the explorer frames its committee scored by the length of
their longest C-C bond and, for every uncertainty ``iter_K/scores.csv`` holds (energy_std,
max/mean_forces_var, and cv_force_std on steered runs scored since it was added), redoes
the iteration's selection on that measure with the run's own selectors: the calibrated
threshold (mu + n sigma over the first steps), the frames already in the data or the test
set, the similarity screen and the iteration's frame count (``selected.json``'s
``max_frames``). The run's own measure must reproduce ``selected.json`` frame for frame
(exit 1 if not), so the other measures' columns are what the loop would have done.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_selection.py \
        runs/hexane_bench/ani5_cvforce --iterations 0 1 2 --out DIR

Writes ``DIR/selection_by_measure.csv`` (one row per iteration, bond bin and measure: frames,
the measure's median, its threshold, frames above it, frames selected) and prints the
frames selected per bin side by side. The bins are ``hexane_tension.py``'s; the C-C bonds
are those of the run's ``setup/start.extxyz`` shorter than 1.7 A.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")


def explorer_bond_lengths(it: Path, runs: set[int], bonds) -> dict[tuple[int, int], float]:
    """(pull, step) -> the longest C-C bond (A) of every frame of iteration dir ``it``'s pulls."""
    import ase.io
    from hexane_tension import longest_bond

    out = {}
    for r in sorted(runs):
        found = sorted((it / "explore").glob(f"*_r{r}")) or [it / "explore"]
        frames = ase.io.read(found[0] / "trajectory.extxyz", ":")
        for a, x in zip(frames, longest_bond(frames, bonds)):
            out[(r, int(a.info["step"]))] = x[0]
    return out


def redo_selection(run_dir: Path, cfg, iteration: int, measure: str, known, method):
    """Iteration ``iteration``'s selection redone on ``measure``: (kept indices, threshold)."""
    from potlab.learn.scores import read_pool
    from potlab.learn.selectors import select_frames, selectors_of

    it = run_dir / f"iter_{iteration:03d}"
    chosen = json.loads((it / "selected.json").read_text())
    threshold, screen = selectors_of(cfg.select)
    pool = read_pool(it / "scores.csv", measure)
    idx, cal, _ = select_frames(pool, threshold, known, screen, chosen["max_frames"],
                                first_only=cfg.select.first_only)
    return [int(k) for k in idx], float(cal.threshold), pool.uncertainty


def main() -> int:
    import csv

    import numpy as np
    from hexane_tension import BINS, chain_bonds, write_rows

    from potlab.learn.config import parse_learn_config
    from potlab.learn.merge import unselectable_hashes
    from potlab.learn.scores import MEASURE_COLUMN
    from potlab.reference import get_method

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iterations", type=int, nargs="+", required=True, metavar="K")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    run = args.run_dir
    for need in [run / "config.json", run / "setup" / "start.extxyz",
                 *(run / f"iter_{k:03d}" / name for k in args.iterations
                   for name in ("scores.csv", "selected.json", "data.extxyz"))]:
        if not need.is_file():
            ap.error(f"{need}: not found (has the iteration been scored and selected?)")
    import ase.io

    cfg = parse_learn_config(json.loads((run / "config.json").read_text()),
                             source=str(run / "config.json"))
    method = get_method(cfg.reference.method, cfg.reference.settings)
    bonds = chain_bonds(ase.io.read(run / "setup" / "start.extxyz"))
    edges = list(itertools.pairwise((0.0, *BINS[1:], 99.0)))
    table = []
    for k in args.iterations:
        it = run / f"iter_{k:03d}"
        with (it / "scores.csv").open() as fh:
            scores = list(csv.DictReader(fh))
        measures = [m for m, col in MEASURE_COLUMN.items()
                    if col in scores[0] and not np.isnan(float(scores[0][col]))]
        length = explorer_bond_lengths(it, {int(r["run"]) for r in scores}, bonds)
        bond = np.array([length[(int(r["run"]), int(r["step"]))] for r in scores])
        known = unselectable_hashes([it / "data.extxyz", run / "setup" / "reference_frames.extxyz"],
                                    method.charge_spin)
        picked = {}
        for m in measures:
            idx, thr, unc = redo_selection(run, cfg, k, m, known, method)
            picked[m] = idx
            if m == cfg.score.measure:
                recorded = json.loads((it / "selected.json").read_text())["selected"]
                if idx != recorded:
                    print(f"iteration {k}: redoing the selection on {m} gave {len(idx)} frames, "
                          f"not selected.json's {len(recorded)}")
                    return 1
            for lo, hi in edges:
                inside = (bond >= lo) & (bond < hi)
                table.append({"iteration": k, "measure": m, "run_measure": int(m == cfg.score.measure),
                              "bond_A": f"{lo:.2f}-{hi:.2f}", "frames": int(inside.sum()),
                              "median": float(np.median(unc[inside])) if inside.any() else "",
                              "threshold": thr, "above_threshold": int((unc[inside] > thr).sum()),
                              "selected": int(inside[idx].sum())})
        print(f"iteration {k}: frames selected per longest C-C bond bin "
              f"(the run selects on {cfg.score.measure}; the others redone)")
        print("  bond A        " + "".join(f"{m:>16s}" for m in measures))
        for lo, hi in edges:
            inside = (bond >= lo) & (bond < hi)
            print(f"  {lo:.2f}-{hi:5.2f}   " + "".join(f"{int(inside[picked[m]].sum()):16d}"
                                                       for m in measures))
    args.out.mkdir(parents=True, exist_ok=True)
    write_rows(args.out / "selection_by_measure.csv", table)
    print(f"wrote {args.out / 'selection_by_measure.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
