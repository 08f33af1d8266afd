"""Where along the pull a learn run's models are wrong: each iteration's best member on the
reference steered run's labelled frames (the unseen test set), frame by frame against the
spring's anchor position (seed 002 Fig. 6, right, as errors along the path).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_path_errors.py runs/hexane_bench/ani3_inherited
        [--out DIR] [--iterations 0 3 6]

Reads only what the run wrote: ``setup/reference_frames.extxyz`` (of its first pull, frame j is step
j x ``reference_run.label_every`` of ``setup/reference_run/trajectory.extxyz``),
``setup/reference_run/steered_log.csv`` (the anchor at each step), and
``iter_k/committee/committee.json`` (the best member's model). Writes ``path_errors.csv``
(iteration, frame, step, anchor_A, energy_error_eV, forces_mae_meV_A) and
``path_errors.png`` into ``--out`` (default: the run directory), and prints per
iteration the mean energy error in windows of anchor position and the force MAE before and
after the reference's rupture (its largest spring force).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> int:
    import numpy as np
    import torch

    import potlab
    from potlab.analysis.trajio import read_trajectory_frames
    from potlab.data import read_frames
    from potlab.learn.explorers import pull_dirs, read_steered_log
    from potlab.learn.report import pull_peak
    from potlab.potential import predict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--iterations", type=int, nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run, out = args.run_dir, args.out or args.run_dir
    out.mkdir(parents=True, exist_ok=True)

    every = int(json.loads((run / "config.json").read_text())["reference_run"]["label_every"])
    # the first reference pull's labelled frames (a run with repeats labels each pull in turn)
    first = pull_dirs(run / "setup" / "reference_run")[0]
    traj = read_trajectory_frames(first / "trajectory.extxyz")
    frames = read_frames(run / "setup" / "reference_frames.extxyz")[:len(range(0, len(traj), every))]
    steps = np.array([int(traj[j * every].info["step"]) for j in range(len(frames))])
    for j in (0, len(frames) - 1):  # the labelled frame is that trajectory frame
        if not np.allclose(frames[j].positions, traj[j * every].positions):
            raise SystemExit(f"reference frame {j} is not trajectory frame {j * every}")
    log = read_steered_log(first)
    anchor = np.interp(steps, log["step"], log["anchor_A"])
    rupture = pull_peak(first)
    e_ref = np.array([f.info["REF_energy"] for f in frames])
    f_ref = [f.arrays["REF_forces"] for f in frames]

    its = args.iterations
    if its is None:
        its = sorted(int(p.name[5:]) for p in run.glob("iter_*")
                     if (p / "committee" / "committee.json").exists())
    rows, curves = [], {}
    for i in its:
        info = json.loads((run / f"iter_{i:03d}" / "committee" / "committee.json").read_text())
        best = info["members"][info["best_member"]]["member"]
        model = run / f"iter_{i:03d}" / "committee" / f"member_{best}" / "model.pt"
        pred = predict(potlab.load(model), frames)
        de = pred["energy"] - e_ref
        starts = np.concatenate([[0], np.cumsum(pred["n_atoms"])[:-1]])
        fmae = np.array([1000 * np.abs(pred["forces"][s:s + len(f)] - f).mean()
                         for s, f in zip(starts, f_ref)])
        curves[i] = (de, fmae)
        rows += [{"iteration": i, "frame": j, "step": int(steps[j]), "anchor_A": f"{anchor[j]:.4f}",
                  "energy_error_eV": f"{de[j]:.5f}", "forces_mae_meV_A": f"{fmae[j]:.2f}"}
                 for j in range(len(frames))]
        before = anchor < rupture["anchor"] - 0.05
        after = anchor > rupture["anchor"] + 0.05
        windows = [(6.0, 7.5), (7.5, 8.5), (8.5, rupture["anchor"] - 0.05)]
        mean_e = "  ".join(f"{a:.1f}-{b:.2f} A: {de[(anchor >= a) & (anchor < b)].mean():+.3f}"
                           for a, b in windows)
        print(f"iteration {i} (member {best}): mean energy error (eV) by anchor {mean_e}; "
              f"force MAE before rupture {fmae[before].mean():.0f}, after "
              f"{fmae[after].mean():.0f} meV/A")
    with open(out / "path_errors.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    cmap = plt.get_cmap("viridis")
    for k, (i, (de, fmae)) in enumerate(curves.items()):
        c = cmap(k / max(len(curves) - 1, 1))
        axes[0].plot(anchor, de, color=c, lw=0.8, label=f"iteration {i}")
        axes[1].plot(anchor, fmae, color=c, lw=0.8)
    for ax in axes:
        ax.axvline(rupture["anchor"], color="k", ls="--", lw=0.8)
    axes[0].axhline(0, color="0.5", lw=0.5)
    axes[0].set_ylim(-0.6, 0.6)  # early iterations' eV-size errors leave the axis
    axes[0].set_ylabel("energy error (eV; clipped at +-0.6)")
    axes[1].set_ylabel("force MAE (meV/A)")
    axes[1].set_xlabel("anchor (A); dashed: the reference's rupture")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "path_errors.png", dpi=120)
    print(f"wrote {out / 'path_errors.csv'} and {out / 'path_errors.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
