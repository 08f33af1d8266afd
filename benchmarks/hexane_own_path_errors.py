"""A model's errors along its own steered pulls, not the reference's: every k-th frame of
the model's first pulls (as ``hexane_pull_noise.py`` wrote them) labelled with the learn
run's reference method, and the model's energy and force errors on the frames whose bond
is intact and on those where one has broken. A model can be exact along the reference's
path and wrong where its own dynamics go.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_own_path_errors.py runs/hexane_bench/ani3_batched16_11 \\
        --model oracle_0=MODEL.pt:PULLS_DIR [...] [--seeds 0-3] [--every 16] --out DIR

``PULLS_DIR`` holds the model's pulls as ``seed_<s>/trajectory.extxyz``. Reads the run's
``config.json`` (the reference method, the explorer's bond-break factor) and
``setup/start.extxyz`` (the bonds a frame is judged against). Writes into ``--out`` per
model ``<name>_frames.extxyz`` (the labelled frames, ``seed`` and ``frame`` in their info),
``labels.db`` (the store: a rerun labels nothing twice) and ``own_path_errors.csv`` (per
frame: model, path, seed, frame, bond broken, energy error in meV/atom, force MAE in
meV/A), and prints per model the mean absolute and mean signed energy error and the force
MAE on intact and on broken frames, of its own pulls and, for comparison, of the run's
test set (``setup/reference_frames.extxyz``: the reference's pulls) judged the same way.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")


def main() -> int:
    import ase.io
    import numpy as np
    from hexane_pull_noise import _seeds  # this folder is the script's: sys.path[0]

    import potlab
    from potlab.data import read_frames
    from potlab.data.writers import write_extxyz
    from potlab.learn.config import LearnConfig
    from potlab.learn.explorers import broken_bonds
    from potlab.learn.labelling import LabelStep
    from potlab.learn.setup import bare
    from potlab.potential import predict

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--model", nargs="+", required=True, metavar="NAME=MODEL:PULLS_DIR")
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--every", type=int, default=16)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    run = args.run_dir
    try:
        seeds = _seeds([args.seeds])
    except ValueError as err:
        ap.error(f"--seeds: {err}")
    models = {}
    for given in args.model:
        name, _, rest = given.partition("=")
        model, _, pulls = rest.partition(":")
        if not (name and Path(model).is_file() and Path(pulls).is_dir()):
            ap.error(f"--model {given}: give NAME=MODEL.pt:PULLS_DIR (both existing)")
        if missing := [s for s in seeds
                       if not (Path(pulls) / f"seed_{s}" / "trajectory.extxyz").is_file()]:
            ap.error(f"--model {given}: no seed_<s>/trajectory.extxyz for seeds {missing}")
        models[name] = (Path(model), Path(pulls))
    cfg = LearnConfig.model_validate({**json.loads((run / "config.json").read_text()),
                                      "base_dir": str(run)})
    start = ase.io.read(run / "setup" / "start.extxyz")
    args.out.mkdir(parents=True, exist_ok=True)
    labeller = LabelStep(cfg.reference.method, cfg.reference.settings,
                         str(args.out / "labels.db"), None, cfg.reference.workers)
    reference_frames = read_frames(run / "setup" / "reference_frames.extxyz")
    rows = []

    def judge(name: str, path: str, lab) -> None:
        pred = predict(potlab.load(models[name][0]), lab)
        n = np.array([len(f) for f in lab])
        de = (pred["energy"] - np.array([f.info["REF_energy"] for f in lab])) / n * 1000
        df = np.abs(pred["forces"] - np.concatenate([f.arrays["REF_forces"] for f in lab]))
        fmae = np.array([1000 * df[end - k:end].mean() for end, k in zip(np.cumsum(n), n)])
        broke = np.array([bool(b) for b in broken_bonds(lab, start, cfg.explore.break_factor)])
        for j, f in enumerate(lab):
            rows.append({"model": name, "path": path, "seed": f.info.get("seed", ""),
                         "frame": f.info.get("frame", j), "bond_broken": bool(broke[j]),
                         "energy_error_meV_atom": float(de[j]),
                         "forces_mae_meV_A": float(fmae[j])})
        for label, sel in (("intact", ~broke), ("broken", broke)):
            if sel.any():
                print(f"{name} on {path}, {label}: {sel.sum()} frames, energy error "
                      f"|{np.abs(de[sel]).mean():.2f}| mean {de[sel].mean():+.2f} meV/atom, "
                      f"force MAE {fmae[sel].mean():.1f} meV/A")

    for name, (_, pulls) in models.items():
        frames = []
        for s in seeds:
            traj = ase.io.read(pulls / f"seed_{s}" / "trajectory.extxyz", ":")
            for k in range(0, len(traj), args.every):
                f = bare(traj[k])
                f.info.update(seed=s, frame=k)
                frames.append(f)
        res = labeller(frames)
        if res.failures:
            print(f"{name}: {len(res.failures)} frames failed to label (left out)")
        write_extxyz(args.out / f"{name}_frames.extxyz", res.labelled)
        judge(name, "its own pulls", read_frames(args.out / f"{name}_frames.extxyz"))
        judge(name, "the reference's (test set)", reference_frames)
    with open(args.out / "own_path_errors.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"written: {args.out / 'own_path_errors.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
