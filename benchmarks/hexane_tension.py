"""Does a model's barrier error follow its error in the force that holds the chain
together? For each model, the restoring force along the longest C-C bond of every
labelled frame of a learn run's reference pulls (the test set), binned by that bond's
length, as the model's signed error in per cent of GFN2-xTB's; beside it the model's
barrier error from steered pulls already run (``pull_noise.csv`` files of
``hexane_pull_noise.py``). Across models, the bin where the two correlate is where the
barrier is decided.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_tension.py \
        runs/hexane_bench/ani5_batched16_11 \
        --pulls docs/results/hexane-learn/ani5_batched16_11/pull_noise.csv ... \
        --model iter_10=runs/.../iter_010/committee/member_0/model.pt ... \
        [--seeds 16] [--frames FILE.extxyz] [--selection 9 10] --out DIR

``--model NAME=PATH``: NAME is the model's ``potential`` in one of the ``--pulls`` files
(the first file that has it; its error is the mean of its pulls with seeds below
``--seeds`` minus the mean of that file's ``reference`` pulls with the same seeds,
kcal/mol, with the standard error of both means in quadrature). ``--frames`` judges the
tension on other labelled frames (a training set, say) instead of the test set.

The restoring force of a bond i-j with unit vector u from i to j is (F_i.u - F_j.u)/2:
positive when the forces pull the two atoms together. The C-C bonds are those of the
run's ``setup/start.extxyz`` shorter than 1.7 A. Writes ``--out/tension.csv`` (one row
per model), ``tension_bins.csv`` (the frames per bin and xTB's mean restoring force) and
``tension.png`` (barrier error against the tension error of the bin that correlates
best), and prints the table and the correlation per bin.

``--selection K ...`` also bins the frames iteration K's committee scored (its explorer
pulls, ``iter_K/scores.csv`` and ``explore/*/trajectory.extxyz``) by the same bond: how
many, the median and 90th percentile of the score the run selects on, how many lie above
the iteration's threshold and how many were selected (``selection.csv``): where the loop
looks, beside where the barrier is decided.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")

KCAL_PER_EV = 23.060548
BINS = (1.5, 1.65, 1.8, 1.9, 2.0, 2.1, 2.3)


def write_rows(path: Path, rows: list[dict]) -> None:
    """``rows`` as a CSV table with the first row's keys as header."""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def chain_bonds(start, cutoff: float = 1.7) -> list[tuple[int, int]]:
    carbons = [i for i, z in enumerate(start.numbers) if z == 6]
    d = start.get_all_distances()
    return [(i, j) for a, i in enumerate(carbons) for j in carbons[a + 1:] if d[i, j] < cutoff]


def longest_bond(frames, bonds):
    """Per frame: the length of its longest bond of ``bonds``, the pair and its unit vector."""
    import numpy as np

    out = []
    for a in frames:
        vec = [a.positions[j] - a.positions[i] for i, j in bonds]
        length = [float(np.linalg.norm(v)) for v in vec]
        k = int(np.argmax(length))
        out.append((length[k], bonds[k], vec[k] / length[k]))
    return out


def restoring_force(forces, longest):
    """Per frame, the restoring force (eV/A) along its longest bond (see the module doc)."""
    import numpy as np

    return np.array([(f[i] @ u - f[j] @ u) / 2 for f, (_, (i, j), u) in zip(forces, longest)])


def barrier_errors(pulls: list[Path], seeds: int) -> dict[str, tuple[float, float, int]]:
    """{potential: (error kcal/mol, standard error, pulls)} from the first file naming it."""
    import numpy as np

    found: dict[str, tuple[float, float, int]] = {}
    for path in pulls:
        rows = [r for r in csv.DictReader(path.open()) if int(r["seed"]) < seeds]
        by: dict[str, dict[int, float]] = {}
        for r in rows:
            by.setdefault(r["potential"], {})[int(r["seed"])] = float(r["barrier_eV"]) * KCAL_PER_EV
        if "reference" not in by:
            raise SystemExit(f"{path}: no 'reference' rows with seeds below {seeds} (potential column)")
        ref = np.array(list(by.pop("reference").values()))
        for name, values in by.items():
            if name in found:
                continue
            x = np.array(list(values.values()))
            se = np.sqrt(x.var(ddof=1) / len(x) + ref.var(ddof=1) / len(ref))
            found[name] = (float(x.mean() - ref.mean()), float(se), len(x))
    return found


def selection_bins(run_dir: Path, iteration: int, bonds) -> list[dict]:
    """Iteration ``iteration``'s scored explorer frames per bin of their longest bond."""
    import numpy as np
    from hexane_selection import explorer_bond_lengths

    from potlab.learn.scores import MEASURE_COLUMN

    it = run_dir / f"iter_{iteration:03d}"
    measure = json.loads((run_dir / "config.json").read_text())["score"]["measure"]
    column = MEASURE_COLUMN[measure]
    scores = list(csv.DictReader((it / "scores.csv").open()))
    chosen = json.loads((it / "selected.json").read_text())
    picked = set(chosen["selected"])
    length = explorer_bond_lengths(it, {int(row["run"]) for row in scores}, bonds)
    rows = []
    for lo, hi in itertools.pairwise((0.0, *BINS[1:], 99.0)):
        values, n_sel = [], 0
        for k, row in enumerate(scores):
            if lo <= length[(int(row["run"]), int(row["step"]))] < hi:
                values.append(float(row[column]))
                n_sel += k in picked
        v = np.array(values)
        rows.append({"iteration": iteration, "bond_A": f"{lo:.2f}-{hi:.2f}", "frames": len(v),
                     f"{measure}_median": float(np.median(v)) if len(v) else "",
                     f"{measure}_p90": float(np.percentile(v, 90)) if len(v) else "",
                     "above_threshold": int((v > chosen["threshold"]).sum()), "selected": n_sel,
                     "threshold": chosen["threshold"]})
    return rows


def main() -> int:
    import ase.io
    import numpy as np

    import potlab
    from potlab.potential import predict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--pulls", type=Path, nargs="+", required=True)
    ap.add_argument("--model", nargs="+", required=True, metavar="NAME=PATH")
    ap.add_argument("--seeds", type=int, default=16, help="use the pulls with seeds below this")
    ap.add_argument("--frames", type=Path, default=None)
    ap.add_argument("--selection", type=int, nargs="*", default=[], metavar="K")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    for need in [*args.pulls, args.run_dir / "setup" / "start.extxyz",
                 args.frames or args.run_dir / "setup" / "reference_frames.extxyz"]:
        if not Path(need).is_file():
            ap.error(f"{need}: not found")
    errors = barrier_errors(args.pulls, args.seeds)
    models = []
    for given in args.model:
        name, sep, path = given.partition("=")
        if not sep or name not in errors:
            ap.error(f"--model {given}: give NAME=PATH with NAME a potential of the --pulls files")
        if not Path(path).is_file():
            ap.error(f"--model {given}: no file {path}")
        models.append((name, Path(path)))

    start = ase.io.read(args.run_dir / "setup" / "start.extxyz")
    frames = ase.io.read(args.frames or args.run_dir / "setup" / "reference_frames.extxyz", ":")
    longest = longest_bond(frames, chain_bonds(start))
    length = np.array([x[0] for x in longest])
    t_ref = restoring_force([a.arrays["REF_forces"] for a in frames], longest)
    bins = list(itertools.pairwise(BINS))
    masks = [(length >= lo) & (length < hi) for lo, hi in bins]
    labels = [f"{lo:.2f}-{hi:.2f}" for lo, hi in bins]
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "tension_bins.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["bond_A", "frames", "xtb_restoring_force_eV_A"])
        for lab, m in zip(labels, masks):
            w.writerow([lab, int(m.sum()), float(t_ref[m].mean()) if m.any() else ""])
    print("frames per bin (longest C-C bond, A):", ", ".join(f"{lab} {int(m.sum())}" for lab, m in zip(labels, masks)))

    rows = []
    for name, path in models:
        pred = predict(potlab.load(path), frames, batch_size=64)
        ends = np.cumsum([0] + [len(a) for a in frames])
        t = restoring_force([pred["forces"][ends[k]:ends[k + 1]] for k in range(len(frames))], longest)
        err, se, n = errors[name]
        row = {"model": name, "path": str(path), "barrier_error_kcal_mol": err, "barrier_se": se, "pulls": n}
        for lab, m in zip(labels, masks):
            row[f"tension_error_pct_{lab}"] = (float(100 * (t[m] - t_ref[m]).mean() / t_ref[m].mean())
                                               if m.any() else float("nan"))
        rows.append(row)
        print(f"{name:16s} barrier {err:+6.2f} +- {se:.2f}  tension error (%) "
              + " ".join(f"{row[f'tension_error_pct_{lab}']:+6.2f}" for lab in labels), flush=True)
    write_rows(args.out / "tension.csv", rows)

    b = np.array([r["barrier_error_kcal_mol"] for r in rows])
    corr = [float(np.corrcoef(b, [r[f"tension_error_pct_{lab}"] for r in rows])[0, 1])
            if len(rows) > 2 and masks[k].any() else float("nan") for k, lab in enumerate(labels)]
    print("correlation of barrier error with tension error, per bin:",
          ", ".join(f"{lab} {c:+.2f}" for lab, c in zip(labels, corr)))
    best = int(np.nanargmax(corr))
    x = np.array([r[f"tension_error_pct_{labels[best]}"] for r in rows])
    slope, icept = np.polyfit(x, b, 1)
    print(f"least squares over {len(rows)} models, bin {labels[best]} A: barrier error = "
          f"{icept:+.2f} {slope:+.2f} * tension error (%) kcal/mol")

    if args.selection:
        table = [r for k in args.selection for r in selection_bins(args.run_dir, k, chain_bonds(start))]
        write_rows(args.out / "selection.csv", table)
        for r in table:
            print(f"iteration {r['iteration']} longest C-C {r['bond_A']} A: {r['frames']:5d} frames scored, "
                  f"median {list(r.values())[3]:.5f}, {r['above_threshold']:4d} above the threshold "
                  f"{r['threshold']:.5f}, {r['selected']:2d} selected")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(x, b, yerr=[r["barrier_se"] for r in rows], fmt="o", ms=4, capsize=2)
    grid = np.linspace(x.min(), x.max(), 2)
    ax.plot(grid, icept + slope * grid, "k--", lw=1, label=f"r = {corr[best]:+.2f}")
    ax.axhspan(-1, 1, color="0.9", label="target +-1 kcal/mol")
    ax.set_xlabel(f"restoring-force error, longest C-C {labels[best]} A (%)")
    ax.set_ylabel("barrier error (kcal/mol)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(args.out / "tension.png", dpi=130)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
