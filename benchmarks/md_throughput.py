"""MD throughput of potlab's engines (issue 12), on the 50-atom LGPS cell in float32:

1. batched vs sequential: 16 replicas (4 temperatures x 4 repeats, Langevin) advanced by the
   batched engine (one model call per step for all 16, 0.5 A skin lists as recommended;
   also printed without a skin) against the same 16 runs one after another with the ASE
   engine; aggregate MD steps/s and their ratio, for ANI, SchNet, SO3krates and MACE at
   their "seed000" presets (untrained weights: speed only);
2. skin neighbour list vs a fresh list every step (batched engine, one replica), steps/s at
   50 and 3,200 atoms (SchNet);
3. uncertainty-monitored MD (a committee of 5 SchNets every 10 steps) vs plain MD (ASE
   engine): the cost ratio;
4. LAMMPS engine vs ASE engine, steps/s with the same SchNet.

Every run goes through potlab.md's run loop (outputs, monitors and checkpoints included),
so these are the speeds a user gets. ``--quick`` uses fewer steps, times the batched engine
with its skin only, and ends with the line::

    batched_vs_sequential ani=<r> schnet=<r> so3krates=<r> mace=<r> uq_cost=<r> skin_speedup=<r>

(skin_speedup at 50 atoms). Timings are wall-clock on whatever else the machine is doing.
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


def batched_vs_sequential(name: str, cell, steps: int, work: Path, no_skin: bool = True
                          ) -> tuple[float, float, float]:
    """Aggregate steps/s of 16 replicas: sequential (ASE engine, one after another),
    batched without (``no_skin``; else NaN) and with a 0.5 A skin (one call per step),
    after a warm-up of each."""
    pot = Potential(name, {"preset": "seed000"}, sorted(set(cell.numbers))).float().eval()
    calc = pot.calculator()
    p = protocol(steps)
    run_md(cell, calc, protocol(1), work / "warm_seq", resume=False)
    run_batched(replicas(cell, work / "warm_b", 16), pot, protocol(1), resume=False)
    reps = replicas(cell, work / f"{name}_seq", 16)
    t_seq = timed(lambda: [run_md(a, calc, p, d, T, s, resume=False) for a, d, T, s in reps])
    t_bat = timed(lambda: run_batched(replicas(cell, work / f"{name}_bat", 16), pot, p,
                                      resume=False)) if no_skin else float("nan")
    ps = protocol(steps, skin_A=0.5)
    t_skin = timed(lambda: run_batched(replicas(cell, work / f"{name}_skin", 16), pot, ps,
                                       resume=False))
    n = 16 * steps
    return n / t_seq, n / t_bat, n / t_skin


def skin_speedup(cell, steps: int, work: Path) -> float:
    pot = Potential("schnet", {"preset": "seed000"}, sorted(set(cell.numbers))).float().eval()
    rates = []
    for skin in (0.0, 0.5):
        p = protocol(steps, skin_A=skin, engine="batched")
        run_batched([(cell, work / "warm_skin", 600.0, 0)], pot, protocol(2, skin_A=skin), resume=False)
        t = timed(lambda p=p, skin=skin: run_batched([(cell, work / f"skin{skin}_{len(cell)}", 600.0, 0)],
                                                     pot, p, resume=False))
        rates.append(steps / t)
    print(f"  skin {len(cell):>5} atoms: fresh list {rates[0]:8.2f} steps/s, skin 0.5 A "
          f"{rates[1]:8.2f} steps/s, speed-up {rates[1] / rates[0]:.2f}x", flush=True)
    return rates[1] / rates[0]


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
    steps = 10 if args.quick else 50
    work = Path(tempfile.mkdtemp(prefix="md_throughput_"))
    print(f"{len(cell)}-atom LGPS, float32, {torch.get_num_threads()} threads, 16 replicas, "
          f"{steps} steps each (seed000 presets, untrained)", flush=True)
    ratios = {}
    try:
        for name in args.models:
            seq, bat, skin = batched_vs_sequential(name, cell, steps, work, no_skin=not args.quick)
            ratios[name] = skin / seq
            print(f"  {name:<10} sequential {seq:8.2f} steps/s  batched {bat:8.2f} (x{bat / seq:.2f})"
                  f"  batched+skin {skin:8.2f} steps/s  ratio {ratios[name]:.2f}x", flush=True)
        skin50 = skin_speedup(cell, 100 if args.quick else 400, work)
        skin_speedup(cell.repeat((4, 4, 4)), 3 if args.quick else 10, work)  # 3,200 atoms
        cost = uq_cost(cell, 50 if args.quick else 200, work)
        lammps_vs_ase(cell, 20 if args.quick else 100, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fields = " ".join(f"{m}={ratios[m]:.2f}" if m in ratios else f"{m}=nan" for m in MODELS)
    print(f"batched_vs_sequential {fields} uq_cost={cost:.2f} skin_speedup={skin50:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
