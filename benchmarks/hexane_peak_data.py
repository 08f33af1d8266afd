"""Label the region that sets the barrier instead of the loop's selection, and train the
next committee on it the loop's way. ``hexane_tension.py`` finds the barrier error
follows the error in the C-C restoring force where that force peaks (longest C-C bond
1.9-2.0 A), where the committee agrees best and the loop's selection takes no frame.
This asks whether labels there move the members' barriers to xTB's and closer together.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_peak_data.py \
        runs/hexane_bench/ani5_batched16_11 --iteration 10 --frames 24 \
        [--bond 1.85 2.15] --out runs/hexane_bench/peak_data_10

Takes ``--frames`` frames of iteration k's explorer pulls (the best member's steered
runs, ``iter_k/explore/*/trajectory.extxyz``) whose longest C-C bond lies in ``--bond``,
evenly spaced in that length; adds the run's augmentation (its noisy copies); labels them
with the run's reference method through a label store of its own (``--out/labels.db``;
the run's store is not touched); appends them to iteration k's data
(``--out/data.extxyz``; the new frames alone in ``new_frames.extxyz``); and trains a
committee with the run's training settings, inherited splits and warm start from
iteration k's committee: what iteration k+1's committee was, with these frames in place of
the loop's selection. Resumable (the store keeps the labels, the members resume). Pull
the members with ``hexane_pull_noise.py RUN --seeds 0-15 --no-reference --reference-csv
... --model ...`` and judge them with ``hexane_tension.py``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")


def main() -> int:
    import ase.io
    import numpy as np
    from hexane_tension import chain_bonds, longest_bond

    from potlab.data.writers import write_extxyz
    from potlab.learn.augment import UniformNoise
    from potlab.learn.labelling import LabelStep
    from potlab.learn.merge import merge_data
    from potlab.train import parse_config, train_committee

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, required=True)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--bond", type=float, nargs=2, default=(1.85, 2.15), metavar=("MIN", "MAX"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    it = args.run_dir / f"iter_{args.iteration:03d}"
    for need in (args.run_dir / "config.json", args.run_dir / "setup" / "start.extxyz",
                 it / "data.extxyz", it / "committee" / "committee.json"):
        if not need.is_file():
            ap.error(f"{need}: not found (a learn run directory whose iteration "
                     f"{args.iteration} has trained and explored)")
    cfg = json.loads((args.run_dir / "config.json").read_text())
    asked = {"iteration": args.iteration, "frames": args.frames, "bond": list(args.bond)}
    kept = args.out / "peak_data.json"
    if kept.is_file() and json.loads(kept.read_text()) != asked:
        ap.error(f"{kept}: this directory holds {kept.read_text().strip()}, not {asked}; "
                 "use another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(asked) + "\n")
    start = ase.io.read(args.run_dir / "setup" / "start.extxyz")
    bonds = chain_bonds(start)
    pool = []
    for traj in sorted((it / "explore").glob("*/trajectory.extxyz")):
        frames = ase.io.read(traj, ":")
        for a, (length, _, _) in zip(frames, longest_bond(frames, bonds)):
            if args.bond[0] <= length <= args.bond[1]:
                pool.append((length, a))
    pool.sort(key=lambda x: x[0])
    if len(pool) < args.frames:
        ap.error(f"only {len(pool)} explorer frames have their longest C-C bond in {args.bond}")
    picked = [pool[k] for k in np.linspace(0, len(pool) - 1, args.frames).round().astype(int)]
    aug = cfg.get("augment") or {}
    structures = UniformNoise(copies=int(aug.get("copies", 2)), amplitude=float(aug.get("amplitude_A", 0.05)),
                              seed=int(aug.get("seed", 0)) + args.iteration)([a for _, a in picked])
    ref = cfg["reference"]
    outcome = LabelStep(ref["method"], ref.get("settings") or {}, str(args.out / "labels.db"),
                        workers=1)(structures)
    print(f"{len(pool)} explorer frames in {args.bond[0]}-{args.bond[1]} A; picked {len(picked)} "
          f"(longest C-C {picked[0][0]:.3f}-{picked[-1][0]:.3f} A), {len(structures)} structures "
          f"with copies: {len(outcome.labelled)} labelled ({outcome.computed} computed, "
          f"{outcome.cached} from the store), {len(outcome.failures)} failed", flush=True)
    write_extxyz(args.out / "new_frames.extxyz", outcome.labelled)
    data_path = args.out / "data.extxyz"
    if not data_path.exists():
        merge_data(it / "data.extxyz", outcome.labelled, data_path)
    raw = json.loads(json.dumps(cfg["train"]))
    raw["data"] = {**(raw.get("data") or {}), "train": str(data_path.resolve())}
    raw["out"] = str((args.out / "committee").resolve())
    com = raw["committee"]
    com = {"size": com} if isinstance(com, int) else dict(com)
    if com.get("split") == "inherited":
        com["inherit_from"] = str((it / "committee").resolve())
    if cfg.get("warm_start", True):
        com["init_from"] = str((it / "committee").resolve())
    raw["committee"] = com
    res = train_committee(parse_config(raw, source="train"))
    for m in res.members:
        print(f"member {m['member']}: {m['epochs']} epochs, force MAE on its data "
              f"{m['forces_mae_all']:.2f} meV/A", flush=True)
    print(f"best member {res.best_member}; committee in {res.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
