"""Retrain one iteration's committee of a learn run with other training settings: each
member on the same data, with the same split and from the same starting weights (the
previous iteration's member when the run warm-starts), only the settings given changed.
It asks whether a committee's spread of barriers is its data or its training.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hexane_retrain.py \
        runs/hexane_bench/ani5_batched16_11 --iteration 10 --set scheduler=cosine \
        --out runs/hexane_bench/retrain_cosine_10 [--members 0 1 2 3 4] [--workers 1]

Each member is an ordinary ``potlab train`` run in ``--out/member_k`` (its ``config.yaml``
is the loop's member config with the changes; resumable: rerun after a kill). Prints per
model (the starting weights, the loop's member, the retrained member) the epochs, the last
learning rate, the force and energy MAE on the run's test set
(``setup/reference_frames.extxyz``, the reference pull's labelled frames) and the force MAE
on the member's validation frames (written to ``--out/test_errors.csv``). The barriers come from pulling the models:
``benchmarks/hexane_pull_noise.py RUN --no-reference --reference-csv ... --model
m0=OUT/member_0/model.pt ...``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")


def _value(text: str):
    import yaml

    return yaml.safe_load(text)


def _train(job: tuple[dict, str]) -> str:
    import torch

    from potlab.train import parse_config, train

    raw, _ = job
    torch.set_num_threads(1)
    cfg = parse_config(raw)
    train(cfg, cfg.out)
    return cfg.out


def main() -> int:
    import ase.io
    import yaml

    import potlab
    from potlab.analysis.parity import evaluate
    from potlab.executor import run_jobs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--iteration", type=int, required=True)
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="training settings to change (YAML values), e.g. scheduler=cosine; "
                         "SECTION.KEY for another section of the config, e.g. "
                         "data.subset_weights='{selected: 4, augmented: 4}'")
    ap.add_argument("--members", type=int, nargs="*", default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    committee = args.run_dir / f"iter_{args.iteration:03d}" / "committee"
    info = json.loads((committee / "committee.json").read_text())
    members = args.members if args.members is not None else [r["member"] for r in info["members"]]
    changes = {}
    for given in args.set:
        key, sep, text = given.partition("=")
        if not sep:
            ap.error(f"--set {given}: give KEY=VALUE")
        changes[key] = _value(text)
    jobs = []
    for m in members:
        raw = yaml.safe_load((committee / f"member_{m}" / "config.yaml").read_text())
        for key, value in changes.items():
            section, _, name = key.rpartition(".")
            if not isinstance(raw.get(section or "training"), dict):
                ap.error(f"--set {key}: the member config has no section {section!r}")
            raw[section or "training"][name] = value
        out = (args.out / f"member_{m}").resolve()
        raw["out"] = str(out)
        out.mkdir(parents=True, exist_ok=True)
        if not (out / "split.json").exists():  # the loop's split for this member
            shutil.copy(committee / f"member_{m}" / "split.json", out / "split.json")
        (out / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        jobs.append((raw, f"member {m}"))
    run_jobs(_train, jobs, workers=args.workers, desc="members")

    test = ase.io.read(args.run_dir / "setup" / "reference_frames.extxyz", ":")
    data = ase.io.read(args.run_dir / f"iter_{args.iteration:03d}" / "data.extxyz", ":")
    rows = []
    for m in members:
        raw = yaml.safe_load((committee / f"member_{m}" / "config.yaml").read_text())
        valid = [data[i] for i in json.loads((committee / f"member_{m}" / "split.json").read_text())["valid"]]
        models = [(f"loop_member_{m}", committee / f"member_{m}" / "model.pt"),
                  (f"member_{m}", args.out / f"member_{m}" / "model.pt")]
        if raw["training"].get("init_model"):  # the weights both started from
            models.insert(0, (f"start_member_{m}", Path(raw["training"]["init_model"])))
        for name, path in models:
            pot = potlab.load(path)
            metrics, _ = evaluate(pot, test)
            on_valid, _ = evaluate(pot, valid)
            row = {"model": name, "epochs": None, "last_lr": None,
                   "test_forces_mae_mev_per_a": metrics["overall"]["forces_mae_mev_per_a"],
                   "test_energy_mae_mev_per_atom": metrics["overall"]["energy_mae_mev_per_atom"],
                   "valid_forces_mae_mev_per_a": on_valid["overall"]["forces_mae_mev_per_a"]}
            if not name.startswith("start"):
                last = list(csv.DictReader((path.parent / "metrics.csv").open()))[-1]
                row["epochs"], row["last_lr"] = int(last["epoch"]) + 1, float(last["lr"])
            rows.append(row)
            trained = (f"epochs {row['epochs']:3d}  last lr {row['last_lr']:.2e}"
                       if row["epochs"] is not None else "(starting weights)          ")
            print(f"{name:18s} {trained}  test F MAE {row['test_forces_mae_mev_per_a']:6.2f} meV/A  "
                  f"E MAE {row['test_energy_mae_mev_per_atom']:.3f} meV/atom  valid F MAE "
                  f"{row['valid_forces_mae_mev_per_a']:6.2f} meV/A", flush=True)
    with (args.out / "test_errors.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
