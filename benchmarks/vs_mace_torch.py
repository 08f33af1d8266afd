"""rMD17 ethanol: potlab's MACE against mace-torch's own ``mace_run_train``, same
architecture, same data split, same loss weights and the same wall budget, side by side.

    python benchmarks/vs_mace_torch.py                # 20 min of training wall time each
    python benchmarks/vs_mace_torch.py --minutes 2    # a quick check that it all runs

Both train on the rMD17 ethanol split 01 (950 train / 50 validation frames, one seeded
split written once as extxyz and given to both), one thread each, as two processes at the
same time. Architecture (both): ScaleShiftMACE, 32 channels, L=1, correlation 3, 2
residual interactions, r_max 5 A, 8 Bessel functions, p=5, l_max 3, radial MLP 64x3,
readout MLP 16x0e, reduced CG; least-squares E0, shift = mean per-atom residual, scale =
RMS force. Training (both): loss = 1 * <(dE/N)^2> + 1000 * <dF_alpha^2>, Adam lr 0.01,
batch 5, EMA 0.99, ReduceLROnPlateau (factor 0.8, patience 10), gradient clip 10, float32,
validation every epoch, the best-validation (EMA) weights kept. mace-torch's Adam always
uses AMSGrad (``--amsgrad`` cannot be switched off on its command line); potlab's does not.

potlab stops itself at the budget (``training.max_time``, wall clock); mace-torch has no
time limit, so it is stopped ``--minutes`` after it logs "Started training", and
``mace_run_train --restart_latest`` then writes its best checkpoint as a model file
without training further. Both models are evaluated on the same 1000 test frames
(``rmd17_ethanol_test_01``): mace-torch's through its own ``MACECalculator``, potlab's
through ``potlab.load``. Epochs done: mace-torch's finished epochs; potlab's optimiser
steps over steps per epoch (its budget can end inside an epoch). The last line is::

    vs_mace_torch potlab_mae=<meV/A> mace_mae=<meV/A> potlab_epochs=<n> mace_epochs=<m>
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "rmd17"
MACE_RUN_TRAIN = Path(sys.executable).parent / "mace_run_train"
NAME = "ethanol"
SEED = 1

ARCH = {"cutoff": 5.0, "num_channels": 32, "max_L": 1, "correlation": 3, "num_interactions": 2,
        "num_bessel": 8, "num_polynomial_cutoff": 5, "max_ell": 3, "radial_mlp": [64, 64, 64],
        "mlp_irreps": "16x0e", "interaction": "RealAgnosticResidualInteractionBlock",
        "interaction_first": "RealAgnosticResidualInteractionBlock", "use_reduced_cg": True}
TRAIN = {"energy_weight": 1.0, "forces_weight": 1000.0, "lr": 0.01, "batch_size": 5,
         "valid_batch_size": 16, "ema_decay": 0.99, "scheduler_factor": 0.8,
         "scheduler_patience": 10, "clip_grad": 10.0, "weight_decay": 0.0,
         "early_stopping_patience": 1000}


def write_split(out: Path, n_valid: int = 50) -> tuple[Path, Path, int]:
    """train.xyz / valid.xyz (eV, eV/A; REF_energy, REF_forces) from the train npz."""
    import ase.io

    from potlab.data import read_frames

    frames = read_frames(DATA / "rmd17_ethanol_train_01.npz")
    order = np.random.default_rng(SEED).permutation(len(frames))
    train, valid = out / "train.xyz", out / "valid.xyz"
    ase.io.write(train, [frames[i] for i in order[n_valid:]], format="extxyz")
    ase.io.write(valid, [frames[i] for i in order[:n_valid]], format="extxyz")
    return train, valid, len(frames) - n_valid


def potlab_config(train: Path, valid: Path, minutes: float, dtype: str, out: Path) -> dict:
    return {
        "data": {"train": str(train), "valid": str(valid)},
        "model": {"name": "mace", **ARCH},
        "training": {"max_time": minutes * 60, "budget_clock": "wall", "max_epochs": 100000,
                     "seed": SEED, "dtype": dtype, "threads": 1, "device": "cpu", **TRAIN},
        "out": str(out),
    }


def mace_args(train: Path, valid: Path, dtype: str, max_epochs: int = 100000) -> list[str]:
    a, t = ARCH, TRAIN
    return [
        str(MACE_RUN_TRAIN), "--name", NAME, "--seed", str(SEED),
        "--train_file", str(train), "--valid_file", str(valid),
        "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--E0s", "average",
        "--model", "ScaleShiftMACE", "--scaling", "rms_forces_scaling",
        "--interaction", a["interaction"], "--interaction_first", a["interaction_first"],
        "--num_channels", str(a["num_channels"]), "--max_L", str(a["max_L"]),
        "--correlation", str(a["correlation"]), "--num_interactions", str(a["num_interactions"]),
        "--r_max", str(a["cutoff"]), "--num_radial_basis", str(a["num_bessel"]),
        "--num_cutoff_basis", str(a["num_polynomial_cutoff"]), "--max_ell", str(a["max_ell"]),
        "--radial_MLP", json.dumps(a["radial_mlp"]), "--MLP_irreps", a["mlp_irreps"],
        "--use_reduced_cg", str(a["use_reduced_cg"]),
        "--loss", "weighted", "--energy_weight", str(t["energy_weight"]),
        "--forces_weight", str(t["forces_weight"]), "--optimizer", "adam", "--lr", str(t["lr"]),
        "--weight_decay", str(t["weight_decay"]), "--batch_size", str(t["batch_size"]),
        "--valid_batch_size", str(t["valid_batch_size"]), "--scheduler", "ReduceLROnPlateau",
        "--lr_factor", str(t["scheduler_factor"]), "--scheduler_patience", str(t["scheduler_patience"]),
        "--ema", "--ema_decay", str(t["ema_decay"]), "--clip_grad", str(t["clip_grad"]),
        "--patience", str(t["early_stopping_patience"]), "--max_num_epochs", str(max_epochs),
        "--eval_interval", "1", "--device", "cpu", "--default_dtype", dtype,
    ]


def one_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "POTLAB_QUIET": "1"}


def run_side_by_side(out: Path, minutes: float, dtype: str) -> dict:
    """Start potlab's training and mace_run_train together; stop mace-torch after its
    budget; return the two run directories and timings."""
    import yaml

    train, valid, n_train = write_split(out)
    (out / "potlab.yaml").write_text(yaml.safe_dump(potlab_config(train, valid, minutes, dtype,
                                                                  out / "potlab")))
    mace_dir = out / "mace"
    mace_dir.mkdir(exist_ok=True)
    env = one_thread_env()
    with open(out / "potlab.log", "w") as plog, open(mace_dir / "stdout.log", "w") as mlog:
        potlab_proc = subprocess.Popen([sys.executable, "-m", "potlab.cli", "train", str(out / "potlab.yaml")],
                                       stdout=plog, stderr=subprocess.STDOUT, env=env)
        mace_proc = subprocess.Popen(mace_args(train, valid, dtype), cwd=mace_dir, stdout=mlog,
                                     stderr=subprocess.STDOUT, env=env)
        log = mace_dir / "logs" / f"{NAME}_run-{SEED}.log"
        started = None
        while mace_proc.poll() is None:
            if started is None and log.exists() and "Started training" in log.read_text():
                started = time.monotonic()
            if started is not None and time.monotonic() - started >= minutes * 60:
                mace_proc.send_signal(signal.SIGTERM)
                try:
                    mace_proc.wait(30)
                except subprocess.TimeoutExpired:
                    mace_proc.kill()
                break
            time.sleep(1.0)
        mace_proc.wait()
        potlab_proc.wait()
    if potlab_proc.returncode != 0:
        raise RuntimeError(f"potlab train failed; see {out / 'potlab.log'}")
    if started is None:
        raise RuntimeError(f"mace_run_train did not start training; see {mace_dir / 'stdout.log'}")
    text = log.read_text()
    mace_epochs = len(re.findall(r"INFO: Epoch \d+:", text))
    ckpts = sorted(mace_dir.glob(f"checkpoints/{NAME}_run-{SEED}_epoch-*.pt"),
                   key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    best_epoch, mace_model = None, None
    if ckpts:  # none when the budget ended inside mace-torch's first epoch
        best_epoch = int(ckpts[-1].stem.rsplit("-", 1)[1])
        # write the best checkpoint as a model file, no further training
        with open(mace_dir / "stdout_final.log", "w") as mlog:
            subprocess.run([*mace_args(train, valid, dtype, max_epochs=best_epoch), "--restart_latest"],
                           cwd=mace_dir, stdout=mlog, stderr=subprocess.STDOUT, env=env, check=True)
        mace_model = mace_dir / f"{NAME}.model"
    # potlab may stop inside an epoch: epochs done = optimiser steps / steps per epoch
    with open(out / "potlab" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    steps_per_epoch = -(-n_train // TRAIN["batch_size"])
    potlab_epochs = int(rows[-1]["step"]) / steps_per_epoch if rows else 0.0
    return {"potlab_model": out / "potlab" / "model.pt", "mace_model": mace_model,
            "potlab_epochs": potlab_epochs, "mace_epochs": mace_epochs, "mace_best_epoch": best_epoch}


def force_mae(calc, frames) -> tuple[float, float]:
    """Forces MAE (meV/A) and energy MAE (meV/atom) against the reference labels."""
    df, de = [], []
    for atoms in frames:
        a = atoms.copy()
        a.calc = calc
        df.append(np.abs(a.get_forces() - atoms.arrays["REF_forces"]).ravel())
        de.append((a.get_potential_energy() - atoms.info["REF_energy"]) / len(a))
    return 1000 * float(np.concatenate(df).mean()), 1000 * float(np.abs(de).mean())


def evaluate(run: dict, dtype: str, n_test: int | None) -> dict:
    import potlab
    from potlab.data import read_frames
    from potlab.models.e3nn_import import import_mace_and_e3nn

    import_mace_and_e3nn()
    from mace.calculators import MACECalculator

    test = read_frames(DATA / "rmd17_ethanol_test_01.npz")[:n_test]
    pot = potlab.load(run["potlab_model"], dtype=dtype)
    pf, pe = force_mae(pot.calculator(), test)
    mf = me = float("nan")
    if run["mace_model"] is not None:
        mace_calc = MACECalculator(model_paths=str(run["mace_model"]), device="cpu", default_dtype=dtype)
        mf, me = force_mae(mace_calc, test)
    return {"n_test": len(test), "potlab_forces_mae": pf, "mace_forces_mae": mf,
            "potlab_energy_mae": pe, "mace_energy_mae": me}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="training wall budget of each")
    p.add_argument("--out", default="runs/vs_mace_torch")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--test-frames", type=int, default=None, help="first N test frames (all 1000)")
    args = p.parse_args(argv)
    if not MACE_RUN_TRAIN.exists():
        p.error(f"mace_run_train not found next to {sys.executable} (pip install mace-torch)")
    out = Path(args.out).resolve()  # mace_run_train runs in its own folder
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    run = run_side_by_side(out, args.minutes, args.dtype)
    res = {**{k: (str(v) if isinstance(v, Path) else v) for k, v in run.items()},
           **evaluate(run, args.dtype, args.test_frames), "minutes": args.minutes,
           "wall_s": time.monotonic() - t0}
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print(f"rMD17 ethanol, {args.minutes:g} min training wall each, 1 thread each, side by side, "
          f"{args.dtype}; test frames: {res['n_test']}")
    print(f"{'':<12}{'epochs':>8}{'F MAE meV/A':>14}{'E MAE meV/at':>14}")
    print(f"{'potlab':<12}{res['potlab_epochs']:>8.2f}{res['potlab_forces_mae']:>14.2f}{res['potlab_energy_mae']:>14.3f}")
    best = (f"   (best epoch {res['mace_best_epoch']})" if res["mace_best_epoch"] is not None
            else "   (no finished epoch within the budget: no model)")
    print(f"{'mace-torch':<12}{res['mace_epochs']:>8}{res['mace_forces_mae']:>14.2f}{res['mace_energy_mae']:>14.3f}{best}")
    print(f"results: {out / 'results.json'}")
    print(f"vs_mace_torch potlab_mae={res['potlab_forces_mae']:.2f} mace_mae={res['mace_forces_mae']:.2f} "
          f"potlab_epochs={res['potlab_epochs']:.2f} mace_epochs={res['mace_epochs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
