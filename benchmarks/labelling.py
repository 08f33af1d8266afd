"""Labelling throughput: hexane with GFN2-xTB on 1 vs 2 local workers, and the 50-atom
LGPS cell (benchmarks/data/structures/) with CHGNet. Prints structures per second.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/labelling.py [--hexane 1500] [--lgps 20]

Each run labels fresh rattled copies without a store (every structure is a real call).
The wall time includes starting the worker processes (forkserver, about 1-2 s) and
loading the method in each; "steady" is the rate between the first 10 % and the last
result. The load average at the start is printed: other jobs on the machine slow both
runs, and the 2-worker run most.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POTLAB_QUIET", "1")

HERE = Path(__file__).parent


def _time_label(method, frames, workers):
    """(total wall s, steady-state structures/s after the first 10 % of results). Runs the
    Labeller's own job function through the executor exactly as ``Labeller.label`` does."""
    from potlab.executor import iter_jobs
    from potlab.reference import get_method, label_one

    m = get_method(method)
    jobs = [(m, a, 0.5) for a in frames]
    start = time.perf_counter()
    arrivals = []
    for _, rec in iter_jobs(label_one, jobs, workers=workers, start_method="forkserver",
                            worker_env={"OMP_NUM_THREADS": "1"}):
        assert rec["ok"], rec["reason"]
        arrivals.append(time.perf_counter())
    wall = time.perf_counter() - start
    k = max(workers, len(arrivals) // 10)
    steady = (len(arrivals) - 1 - k) / (arrivals[-1] - arrivals[k])
    return wall, steady


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def machine_speedup(n: int = 2_000_000, jobs: int = 8) -> float:
    """Speed-up of a pure-Python CPU loop on 2 processes over 1: what the machine can give
    right now (about 2 on an idle 2-core machine, about 1 when other jobs use the cores)."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    for _ in range(jobs):
        _burn(n)
    serial = time.perf_counter() - start
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_burn, [10, 10]))
        start = time.perf_counter()
        list(pool.map(_burn, [n] * jobs))
        parallel = time.perf_counter() - start
    return serial / parallel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hexane", type=int, default=1500,
                   help="hexane structures (0 to skip); enough that starting the workers (~1 s) does not dominate")
    p.add_argument("--lgps", type=int, default=20, help="LGPS structures (0 to skip)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()

    import ase.io

    from potlab.reference.generate import RattleParams, conformer, rattle

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"control: a CPU loop runs {machine_speedup():.2f}x faster on 2 processes than on 1")
    if args.hexane:
        hexane = conformer("CCCCCC", seed=0)
        base = {}
        for w in args.workers:
            frames = rattle([hexane], RattleParams(copies=args.hexane, amplitude=0.05, seed=w))
            wall, steady = _time_label("gfn2-xtb", frames, w)
            base.setdefault("t", wall)
            base.setdefault("s", steady)
            print(f"hexane GFN2-xTB  workers={w}  {len(frames)} structures  {wall:7.2f} s  "
                  f"{len(frames) / wall:7.1f} structures/s (speed-up {base['t'] / wall:4.2f}x)  "
                  f"steady {steady:7.1f} structures/s (speed-up {steady / base['s']:4.2f}x)")
    if args.lgps:
        try:
            import chgnet  # noqa: F401
        except ImportError:
            print("chgnet not installed: LGPS benchmark skipped")
            return
        lgps = ase.io.read(HERE / "data" / "structures" / "Li10GeP2S12_P42mc_pymatgen.cif")
        for w in args.workers:
            frames = rattle([lgps], RattleParams(copies=args.lgps, amplitude=0.03, seed=w))
            wall, steady = _time_label("chgnet", frames, w)
            print(f"LGPS ({len(lgps)} atoms) CHGNet  workers={w}  {len(frames)} structures  "
                  f"{wall:7.2f} s  {len(frames) / wall:6.2f} structures/s  "
                  f"steady {steady:6.2f} structures/s")


if __name__ == "__main__":
    main()
