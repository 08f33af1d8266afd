"""rMD17 ethanol: every architecture, same data, same trainer, same compute budget.

    python benchmarks/rmd17_ethanol.py                 # every architecture, 30 min each, two at a time
    python benchmarks/rmd17_ethanol.py --models schnet mace
    python benchmarks/rmd17_ethanol.py --minutes 2 --models schnet

Trains on the rMD17 ethanol train split 01 (950 train / 50 validation, seeded), evaluates
the best-validation model on the 1000-frame test split and prints energy MAE (meV/atom)
and forces MAE (meV/A); writes results.json, results.csv and training curves under --out.
By default the models train side by side, one thread each, as many at a time as the
machine has cores; the budget is CPU seconds of the training process, so each model
gets the same compute even on a busy machine (--sequential: one after another with all
threads). Re-running resumes finished or
killed runs (a finished run is only re-evaluated).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "rmd17"

# Hyper-parameters per architecture for this benchmark (CPU-sized; see --help).
SETTINGS = {
    "schnet": {
        "model": {"num_features": 128, "num_filters": 128, "num_interactions": 4, "num_rbf": 50},
        "training": {"lr": 1e-3, "batch_size": 5},
    },
    "mace": {
        "model": {"num_channels": 32, "max_L": 1, "correlation": 3, "num_interactions": 2},
        "training": {"lr": 1e-2, "batch_size": 5},
    },
    "painn": {"model": {"num_features": 128}, "training": {"lr": 5e-4, "batch_size": 5}},
    "dimenetpp": {"model": {}, "training": {"lr": 1e-3, "batch_size": 5}},
    "ani": {"model": {}, "training": {"lr": 1e-3, "batch_size": 5}},
    "so3krates": {"model": {}, "training": {"lr": 1e-3, "batch_size": 5}},
}
DEFAULT_MODELS = ["all"]


def config(name: str, minutes: float, out: Path, threads: int) -> dict:
    s = SETTINGS.get(name, {"model": {}, "training": {}})
    return {
        "data": {"train": str(DATA / "rmd17_ethanol_train_01.npz"), "valid_fraction": 0.05},
        "model": {"name": name, "cutoff": 5.0, **s["model"]},
        "training": {
            "max_time": minutes * 60, "budget_clock": "cpu", "max_epochs": 100000, "seed": 1,
            "energy_weight": 1.0, "forces_weight": 1000.0,  # seed 000's 1:1000
            "ema_decay": 0.99, "scheduler_patience": 10, "early_stopping_patience": 60,
            "dtype": "float32", "threads": threads, **s["training"],
        },
        "out": str(out / name),
    }


def train_one(name: str, minutes: float, out: Path, threads: int) -> None:
    from potlab.train import parse_config, train

    train(parse_config(config(name, minutes, out, threads), source=f"rmd17_ethanol[{name}]"))


def evaluate_one(name: str, out: Path) -> dict:
    import potlab
    from potlab.analysis.parity import evaluate
    from potlab.data import read_frames
    from potlab.report.plots import parity_plot, training_curve

    run = out / name
    pot = potlab.load(run / "model.pt")
    test = read_frames(DATA / "rmd17_ethanol_test_01.npz")
    metrics, arrays = evaluate(pot, test, batch_size=50)
    m = metrics["overall"]
    parity_plot(arrays, run / "parity_test.png", title=f"{name}: rMD17 ethanol test", metrics=m)
    training_curve(run / "metrics.csv", run / "training_curve.png", title=f"{name}: rMD17 ethanol")
    summary = json.loads((run / "summary.json").read_text())
    with open(run / "metrics.csv") as fh:
        curve = [(float(r["time_s"]), float(r["valid_forces_mae_mev_per_a"])) for r in csv.DictReader(fh)]
    return {
        "model": name,
        "params": sum(p.numel() for p in pot.parameters()),
        "epochs": summary["epochs"],
        "train_minutes": summary["elapsed_s"] / 60,
        "energy_mae_mev_per_atom": m["energy_mae_mev_per_atom"],
        "energy_mae_mev": m["energy_mae_mev_per_atom"] * 9,
        "forces_mae_mev_per_a": m["forces_mae_mev_per_a"],
        "forces_r2": m["forces_r2"],
        "curve_valid_forces_mae": curve,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                   help="architectures to train, or 'all' for every registered one")
    p.add_argument("--minutes", type=float, default=30.0, help="training budget per model")
    p.add_argument("--out", default=str(HERE / "out" / "rmd17_ethanol"))
    p.add_argument("--sequential", action="store_true", help="one model after another, all threads")
    p.add_argument("--_train", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    if args.models == ["all"]:
        from potlab.models import available

        args.models = list(available())
    if args._train:  # worker mode
        train_one(args._train, args.minutes, out, threads=1)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.sequential:
        for name in args.models:
            train_one(name, args.minutes, out, threads=os.cpu_count() or 1)
    else:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        width = os.cpu_count() or 1
        codes = []
        for k in range(0, len(args.models), width):  # waves of one model per core
            procs = [
                subprocess.Popen([sys.executable, __file__, "--_train", name, "--minutes",
                                  str(args.minutes), "--out", str(out)], env=env)
                for name in args.models[k : k + width]
            ]
            codes += [q.wait() for q in procs]
        if any(codes):
            print(f"training failed: exit codes {dict(zip(args.models, codes))}", file=sys.stderr)
            return 1
    rows = [evaluate_one(name, out) for name in args.models]
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[k for k in rows[0] if k != "curve_valid_forces_mae"])
        w.writeheader()
        w.writerows([{k: v for k, v in r.items() if k != "curve_valid_forces_mae"} for r in rows])
    print(f"rMD17 ethanol, split 01: 950 train / 50 valid, 1000 test frames; "
          f"{args.minutes:g} min per model; wall {time.time() - t0:.0f} s")
    print(f"{'model':<10}{'params':>10}{'epochs':>8}{'E MAE meV/atom':>16}{'E MAE meV':>11}{'F MAE meV/A':>13}{'F R2':>9}")
    for r in rows:
        print(f"{r['model']:<10}{r['params']:>10,}{r['epochs']:>8}{r['energy_mae_mev_per_atom']:>16.3f}"
              f"{r['energy_mae_mev']:>11.2f}{r['forces_mae_mev_per_a']:>13.2f}{r['forces_r2']:>9.5f}")
    print("validation forces MAE (meV/A) along training (min: value):")
    for r in rows:
        pts = r["curve_valid_forces_mae"]
        picks = [pts[int(i)] for i in [len(pts) * f for f in (0, 0.1, 0.25, 0.5, 0.75)] if int(i) < len(pts)] + pts[-1:]
        print(f"  {r['model']:<8} " + "  ".join(f"{t / 60:.1f}: {v:.1f}" for t, v in picks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
