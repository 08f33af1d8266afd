"""MD throughput of potlab's engines (issue 12), on the 50-atom LGPS cell in float32:

1. batched vs sequential: 16 replicas (4 temperatures x 4 repeats, Langevin) advanced by the
   batched engine (one model call per step for all 16) against the same 16 runs one after
   another with the ASE engine, both with the same protocol (0.5 A skin lists; also printed
   with fresh lists, not in ``--quick``); aggregate MD steps/s and their ratio, for ANI,
   SchNet, SO3krates and MACE at their "seed000" presets (untrained weights: speed only);
2. skin neighbour list vs a fresh list every step (batched engine with one replica, and the
   ASE engine), steps/s at 50 and 3,200 atoms (SchNet);
3. uncertainty-monitored MD (a committee of 5 SchNets every 10 steps) vs plain MD (ASE
   engine): the cost ratio;
4. LAMMPS engine vs ASE engine, steps/s with the same SchNet.

Every run goes through potlab.md's run loop (outputs, monitors and checkpoints included),
so these are the speeds a user gets. ``--quick`` uses fewer steps, times the skin protocol
only, and ends with the line::

    batched_vs_sequential ani=<r> schnet=<r> so3krates=<r> mace=<r> uq_cost=<r> skin_speedup=<r>

(skin_speedup: batched engine at 50 atoms). Beside each ratio the model-call ceiling:
16 one-replica Potential calls over one 16-replica call, graphs prebuilt, no MD: what one
call per step can give that model at most (a compute-bound model is near 1). Timings are wall-clock on whatever else the
machine is doing: run it on a quiet machine (``taskset -c 1`` keeps it on one core).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from ase.io import read

import potlab.models.mace  # noqa: F401  (mace before e3nn)
from potlab.md import parse_protocol, run_md
from potlab.md.batched import run_batched
from potlab.potential import Committee, Potential

HERE = Path(__file__).parent
LGPS = HERE / "data" / "structures" / "Li10GeP2S12_P42mc_pymatgen.cif"
MODELS = ("ani", "schnet", "so3krates", "mace")


def protocol(steps: int, **kw):
    base = {"ensemble": "nvt", "thermostat": "langevin", "timestep_fs": 2.0, "steps": steps,
            "interval": max(steps, 1), "formats": ["extxyz"], "monitors": {"enabled": False},
            "temperatures_K": [600.0]}
    base.update(kw)
    return parse_protocol(base, "md_throughput")


def replicas(cell, out: Path, n: int = 16):
    temps = [600.0, 800.0, 1000.0, 1200.0]
    return [(cell, out / f"r{k}", temps[k % 4], k) for k in range(n)]


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def batched_vs_sequential(name: str, cell, steps: int, work: Path, fresh: bool = True
                          ) -> dict[str, float]:
    """Aggregate steps/s of 16 replicas with the same protocol (0.5 A skin): one after
    another with the ASE engine (``seq``) and together with the batched engine (``bat``,
    one model call per step); with ``fresh`` also both with a fresh list every step
    (``seq_fresh``, ``bat_fresh``; else NaN). Each after a warm-up."""
    pot = Potential(name, {"preset": "seed000"}, sorted(set(cell.numbers))).float().eval()
    calc = pot.calculator()
    ps, p0 = protocol(steps, skin_A=0.5), protocol(steps)
    run_md(cell, calc, protocol(1, skin_A=0.5), work / "warm_seq", resume=False)
    run_batched(replicas(cell, work / "warm_b", 16), pot, protocol(1, skin_A=0.5), resume=False)
    nan = float("nan")

    def seq(p, tag):
        reps = replicas(cell, work / f"{name}_{tag}", 16)
        return timed(lambda: [run_md(a, calc, p, d, T, s, resume=False) for a, d, T, s in reps])

    def bat(p, tag):
        return timed(lambda: run_batched(replicas(cell, work / f"{name}_{tag}", 16), pot, p,
                                         resume=False))

    n = 16 * steps
    return {"seq": n / seq(ps, "seq"), "bat": n / bat(ps, "bat"),
            "seq_fresh": n / seq(p0, "seq0") if fresh else nan,
            "bat_fresh": n / bat(p0, "bat0") if fresh else nan}


def call_ceiling(name: str, cell, repeats: int = 3) -> float:
    """What batching can give this model at most: the time of 16 one-replica Potential
    calls (forces) over one call on all 16 (rattled copies of ``cell``, graphs built
    beforehand, after a warm-up). A compute-bound model is near 1 whatever the engine."""
    import numpy as np

    pot = Potential(name, {"preset": "seed000"}, sorted(set(cell.numbers))).float().eval()
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(16):
        a = cell.copy()
        a.positions += rng.normal(0.0, 0.05, a.positions.shape)
        frames.append(a)
    one, every = [pot.graph(frames)], [pot.graph([f]) for f in frames]
    times = []
    for graphs in (one, every):
        for g in graphs:
            pot(g, forces=True)
        times.append(timed(lambda graphs=graphs: [pot(g, forces=True) for g in graphs
                                                  for _ in range(repeats)]))
    return times[1] / times[0]


def skin_speedup(cell, steps: int, work: Path) -> dict[str, float]:
    """Steps/s of one SchNet run with a 0.5 A skin over a fresh list every step, for the
    batched engine (one replica) and the ASE engine."""
    pot = Potential("schnet", {"preset": "seed000"}, sorted(set(cell.numbers))).float().eval()
    out = {}
    for engine in ("batched", "ase"):
        rates = []
        for skin in (0.0, 0.5):
            p = protocol(steps, skin_A=skin, engine=engine)
            d = work / f"skin_{engine}{skin}_{len(cell)}"
            if engine == "batched":
                run_batched([(cell, work / "warm_skin", 600.0, 0)], pot, protocol(2, skin_A=skin),
                            resume=False)
                t = timed(lambda p=p, d=d: run_batched([(cell, d, 600.0, 0)], pot, p, resume=False))
            else:
                run_md(cell, pot.calculator(), protocol(2, skin_A=skin), work / "warm_skin_ase",
                       resume=False)
                t = timed(lambda p=p, d=d: run_md(cell, pot.calculator(), p, d, resume=False))
            rates.append(steps / t)
        out[engine] = rates[1] / rates[0]
        print(f"  skin {len(cell):>5} atoms, {engine:<7} engine: fresh list {rates[0]:8.2f} "
              f"steps/s, skin 0.5 A {rates[1]:8.2f} steps/s, speed-up {out[engine]:.2f}x",
              flush=True)
    return out


def uq_cost(cell, steps: int, work: Path) -> float:
    elements = sorted(set(cell.numbers))
    pot = Potential("schnet", {"preset": "seed000"}, elements).float().eval()
    members = []
    for s in range(5):
        torch.manual_seed(s)
        members.append(Potential("schnet", {"preset": "seed000"}, elements).float().eval())
    com = Committee(members).eval()
    com(com.graph([cell]))  # let group="auto" choose its path before timing
    calc = pot.calculator()
    run_md(cell, calc, protocol(2), work / "warm_uq", resume=False)
    plain = timed(lambda: run_md(cell, calc, protocol(steps), work / "plain", resume=False))
    p = protocol(steps, uncertainty={"committee": "<given>", "every_steps": 10})
    uq = timed(lambda: run_md(cell, calc, p, work / "uq", resume=False, committee=com))
    print(f"  UQ (committee of 5 every 10 steps): plain {steps / plain:.2f} steps/s, monitored "
          f"{steps / uq:.2f} steps/s, cost {uq / plain:.2f}x", flush=True)
    return uq / plain


def lammps_vs_ase(cell, steps: int, work: Path) -> float:
    pot = Potential("schnet", {"preset": "seed000"}, sorted(set(cell.numbers))).float().eval()
    calc = pot.calculator()
    rates = {}
    for engine in ("ase", "lammps"):
        run_md(cell, calc, protocol(2, engine=engine), work / f"warm_{engine}", resume=False)
        t = timed(lambda engine=engine: run_md(cell, calc, protocol(steps, engine=engine),
                                               work / engine, resume=False))
        rates[engine] = steps / t
    print(f"  LAMMPS engine {rates['lammps']:.2f} steps/s, ASE engine {rates['ase']:.2f} steps/s, "
          f"ratio {rates['lammps'] / rates['ase']:.2f}", flush=True)
    return rates["lammps"] / rates["ase"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (a few minutes)")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()
    cell = read(LGPS)
    steps = 20 if args.quick else 50
    # --quick: MACE (128 channels, 6 A, 0.6 s a step here) runs 5 steps per replica
    model_steps = {"mace": 5} if args.quick else {}
    work = Path(tempfile.mkdtemp(prefix="md_throughput_"))
    print(f"{len(cell)}-atom LGPS, float32, {torch.get_num_threads()} threads, 16 replicas, "
          f"{steps} steps each{' (mace 5)' if args.quick else ''} (seed000 presets, untrained)",
          flush=True)
    ratios = {}
    try:
        for name in args.models:
            r = batched_vs_sequential(name, cell, model_steps.get(name, steps), work,
                                      fresh=not args.quick)
            ratios[name] = r["bat"] / r["seq"]
            print(f"  {name:<10} skin 0.5 A: sequential {r['seq']:8.2f} steps/s, batched "
                  f"{r['bat']:8.2f} steps/s, ratio {ratios[name]:.2f}x   fresh lists: "
                  f"sequential {r['seq_fresh']:8.2f}, batched {r['bat_fresh']:8.2f}   "
                  f"model-call ceiling {call_ceiling(name, cell):.2f}x", flush=True)
        skin50 = skin_speedup(cell, 100 if args.quick else 400, work)["batched"]
        skin_speedup(cell.repeat((4, 4, 4)), 2 if args.quick else 10, work)  # 3,200 atoms
        cost = uq_cost(cell, 100 if args.quick else 200, work)
        lammps_vs_ase(cell, 20 if args.quick else 100, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fields = " ".join(f"{m}={ratios[m]:.2f}" if m in ratios else f"{m}=nan" for m in MODELS)
    print(f"batched_vs_sequential {fields} uq_cost={cost:.2f} skin_speedup={skin50:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
