"""rMD17 ethanol: does force accuracy rank the architectures the way MD stability does?

    python benchmarks/rmd17_stability.py                   # after benchmarks/rmd17_ethanol.py
    python benchmarks/rmd17_stability.py --ps 10 --temperature 500 --models schnet mace

Seed 000 (and MDsim, Fu et al. 2023) argue that low force errors do not guarantee stable,
faithful MD. For every model trained by ``rmd17_ethanol.py`` this runs Langevin NVT MD of
one ethanol molecule (from the first test frame, 0.5 fs steps, friction 0.01/fs, as MDsim
ran MD17 molecules at 500 K) with potlab's live stability monitors (bond length beyond
+0.5 A, fusion, NaN), and compares the distribution of interatomic distances h(r) of the
trajectory with that of the 1000 rMD17 test frames (MD17 was sampled by 500 K AIMD): the
mean |dh| over 0.05 A bins and the integral of |dh| dr (MDsim's h(r) error), beside two
yardsticks: the same error between the rMD17 train and test frames, and between the two
halves of the run itself (its sampling noise: 10 fs apart, MD frames are correlated).
Prints a table
with the test force MAE and the Spearman rank correlation between force MAE and each MD
measure; writes stability_<T>K.json and .csv beside the accuracy results (MD in
<model>/md_<T>K/). Above 500 K (e.g. --temperature 1000, a stress test beyond the
training distribution) t_stab is the measure: the h(r) reference is still the 500 K data.
Runs resume (potlab.md checkpoints) when the command is repeated.
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

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "rmd17"
EDGES = np.arange(0.0, 5.0 + 1e-9, 0.05)  # Angstrom


def h_of_r(frames) -> np.ndarray:
    """Normalised histogram of all interatomic distances (1/A), pooled over frames."""
    counts = np.zeros(len(EDGES) - 1)
    for a in frames:
        d = a.get_all_distances()[np.triu_indices(len(a), 1)]
        counts += np.histogram(d, bins=EDGES)[0]
    return counts / (counts.sum() * np.diff(EDGES))


def run_one(name: str, out: Path, ps: float, temperature: float, seed: int) -> None:
    import potlab
    from potlab.data import read_frames
    from potlab.md import parse_protocol, run_md

    start = read_frames(DATA / "rmd17_ethanol_test_01.npz")[0]
    start = start.__class__(numbers=start.numbers, positions=start.positions)  # no labels
    steps = round(ps * 1000 / 0.5)
    protocol = parse_protocol({
        "ensemble": "nvt", "thermostat": "langevin", "temperatures_K": [temperature],
        "timestep_fs": 0.5, "steps": steps, "interval": 20, "block": 20, "seed": seed,
        "friction_per_fs": 0.01, "formats": ["extxyz"],
    }, source=f"rmd17_stability[{name}]")
    calc = potlab.load(out / name / "model.pt", dtype="float64").calculator()
    run_md(start, calc, protocol, md_dir(out, name, temperature), temperature_K=temperature, seed=seed)


def md_dir(out: Path, name: str, temperature: float) -> Path:
    return out / name / f"md_{temperature:g}K"


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=None, help="default: every trained model")
    p.add_argument("--ps", type=float, default=10.0, help="picoseconds of MD per model")
    p.add_argument("--temperature", type=float, default=500.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "out" / "rmd17_ethanol"))
    p.add_argument("--_run", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out)
    if args._run:
        run_one(args._run, out, args.ps, args.temperature, args.seed)
        return 0
    names = args.models or sorted(d.name for d in out.iterdir() if (d / "model.pt").exists())
    t0 = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POTLAB_QUIET": "1"}
    width = os.cpu_count() or 1
    for k in range(0, len(names), width):  # one model per core
        procs = [subprocess.Popen([sys.executable, __file__, "--_run", n, "--ps", str(args.ps),
                                   "--temperature", str(args.temperature), "--seed", str(args.seed),
                                   "--out", str(out)], env=env) for n in names[k : k + width]]
        if any(q.wait() for q in procs):
            print("an MD run failed", file=sys.stderr)
            return 1

    from ase.io import read

    from potlab.data import read_frames

    ref = h_of_r(read_frames(DATA / "rmd17_ethanol_test_01.npz"))
    accuracy = {}
    if (out / "results.json").exists():
        accuracy = {r["model"]: r for r in json.loads((out / "results.json").read_text())}
    rows = []
    for n in names:
        run = md_dir(out, n, args.temperature)
        res = json.loads((run / "result.json").read_text())
        frames = read(run / "trajectory.extxyz", index=":")
        h = h_of_r(frames)
        dh = np.abs(h - ref)
        half = len(frames) // 2  # sampling noise: first half of the run against the second
        d_halves = np.abs(h_of_r(frames[:half]) - h_of_r(frames[half:]))
        rows.append({
            "model": n, "forces_mae_mev_per_a": accuracy.get(n, {}).get("forces_mae_mev_per_a", float("nan")),
            "t_stab_ps": res["stability"]["t_stab_ps"], "stable": res["stability"]["stable"],
            "reason": res["stability"]["reason"], "h_mean_abs": float(dh.mean()),
            "h_integral": float((dh * np.diff(EDGES)).sum()),
            "h_integral_halves": float((d_halves * np.diff(EDGES)).sum()), "steps_per_s": res["steps_per_s"],
            "final_T": res["final_temperature_K"],
        })
    tag = f"{args.temperature:g}K"
    (out / f"stability_{tag}.json").write_text(json.dumps(rows, indent=1))
    with open(out / f"stability_{tag}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"ethanol NVT {args.temperature:g} K, {args.ps:g} ps per model, 0.5 fs; wall {time.time() - t0:.0f} s")
    train = read_frames(DATA / "rmd17_ethanol_train_01.npz")
    floor = float((np.abs(h_of_r(train) - ref) * np.diff(EDGES)).sum())
    print(f"{'model':<10}{'F MAE meV/A':>12}{'t_stab ps':>11}{'h(r) MAE':>10}{'int|dh|dr':>11}{'halves':>8}"
          f"{'steps/s':>9}  reason")
    for r in sorted(rows, key=lambda r: r["forces_mae_mev_per_a"]):
        print(f"{r['model']:<10}{r['forces_mae_mev_per_a']:>12.2f}{r['t_stab_ps']:>11.2f}{r['h_mean_abs']:>10.4f}"
              f"{r['h_integral']:>11.4f}{r['h_integral_halves']:>8.4f}{r['steps_per_s']:>9.1f}  {r['reason'] or 'stable'}")
    print(f"int|dh|dr floor, rMD17 train frames against test frames (both DFT): {floor:.4f}; "
          "'halves': a run's first half against its second (its own sampling noise)")
    f = [r["forces_mae_mev_per_a"] for r in rows]
    print(f"Spearman rank correlation, force MAE vs h(r) error: {spearman(f, [r['h_integral'] for r in rows]):.2f}; "
          f"vs -t_stab: {spearman(f, [-r['t_stab_ps'] for r in rows]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
