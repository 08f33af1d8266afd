"""Training throughput with several processes: ``potlab train --nproc N`` against one process.

    python benchmarks/train_ddp.py                  # 1 and 2 processes, SchNet, 80 Li3PS4 frames
    python benchmarks/train_ddp.py --nproc 1 2 4 --model painn --epochs 6

Both runs train the same config (same global batches, seed and weights: the runs end with
the same model, see tests/test_train_ddp.py) with 1 thread per process, through the
command line a user types. Frames/s = training frames per epoch x (epochs - 1) / the
time from the end of the first epoch to the end of the last one, from rank 0's
``metrics.csv`` (start-up, graph building and the first epoch's warm-up left out; the
per-epoch validation on rank 0 is in, as it is in any run). The wall time of the whole
command is printed too. On a machine with few cores shared with other work the ratio says
little about a cluster; it shows the cost of the all-reduce and the shards.

``ddp_throughput(...)`` returns the numbers (``benchmarks/train_scale.py`` may import it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parents[1] / "src" / "potlab" / "studies" / "data" / "li3ps4" / \
    "Li3PS4-sample-train.xyz"


def _run(config: Path, nproc: int, cwd: Path) -> float:
    cmd = [sys.executable, "-m", "potlab.cli", "train", str(config)]
    if nproc > 1:
        cmd[4:4] = ["--nproc", str(nproc)]
    env = {**os.environ, "POTLAB_QUIET": "1", "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t


def ddp_throughput(nprocs=(1, 2), model: dict | None = None, epochs: int = 4, batch_size: int = 8,
                   data: Path = DATA, energy_key: str = "energy", forces_key: str = "forces",
                   workdir: Path | None = None) -> list[dict]:
    """Train the same config with each process count in ``nprocs``; one dict per count:
    nproc, n_train, epochs, frames_per_s (training epochs after the first), wall_s (the
    whole command), and speedup (frames/s over the first count's)."""
    model = model or {"name": "schnet", "cutoff": 5.0}
    rows = []
    with tempfile.TemporaryDirectory(prefix="potlab-ddp-bench-") as tmp:
        root = Path(workdir or tmp)
        for n in nprocs:
            cfg = {"data": {"train": str(data), "energy_key": energy_key, "forces_key": forces_key,
                            "valid_fraction": 0.05},
                   "model": model,
                   "training": {"max_epochs": epochs, "batch_size": batch_size, "seed": 0,
                                "threads": 1, "device": "cpu", "max_time": None,
                                "refit_e0": False},
                   "out": str(root / f"nproc{n}")}
            path = root / f"nproc{n}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            wall = _run(path, n, root)
            with open(root / f"nproc{n}" / "metrics.csv") as fh:
                times = [float(r["time_s"]) for r in csv.DictReader(fh)]
            summary = json.loads((root / f"nproc{n}" / "summary.json").read_text())
            n_train = summary["n_train"]
            rows.append({"nproc": n, "n_train": n_train, "epochs": len(times),
                         "frames_per_s": n_train * (len(times) - 1) / (times[-1] - times[0]),
                         "wall_s": wall})
    for r in rows:
        r["speedup"] = r["frames_per_s"] / rows[0]["frames_per_s"]
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--model", default="schnet")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8, help="global batch (frames)")
    args = p.parse_args(argv)
    rows = ddp_throughput(args.nproc, {"name": args.model, "cutoff": 5.0}, args.epochs,
                          args.batch_size)
    print(f"{args.model}, {rows[0]['n_train']} training frames (Li3PS4, 16-32 atoms), global "
          f"batch {args.batch_size}, {args.epochs} epochs, gloo, 1 thread per process, "
          f"{os.cpu_count()} CPUs")
    print(f"{'processes':>10}{'frames/s':>11}{'speed-up':>10}{'wall s':>9}")
    for r in rows:
        print(f"{r['nproc']:>10}{r['frames_per_s']:>11.1f}{r['speedup']:>10.2f}{r['wall_s']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
