"""Speed of every architecture as an ASE calculator and in MD (seed 000's Table 1 columns).

    python benchmarks/speed.py            # 50-atom LGPS cell and supercells up to 3,200 atoms
    python benchmarks/speed.py --quick    # the 50-atom cell only (a few minutes)

For each registered architecture at its "seed000" preset (128 features, 6 A cutoff;
untrained weights: speed does not depend on training): parameters, milliseconds per
energy+forces call (median over calls, positions rattled each call so the neighbour list
is rebuilt, as in MD), MD steps per second with ASE's velocity Verlet at 2 fs and the
ns/day that gives, and the exponent b of a fit time ~ N^b over the supercells (>= 200
atoms). mace-torch's own ``MACECalculator`` runs the identical MACE model (potlab's MACE
holds a ``mace.modules.MACE``) as a reference. Prints a table, writes CSV, and ends with
one line ``mace_vs_macetorch=<ratio> committee5_vs_sequential=<ratio>`` (ratio > 1 means
potlab is faster). Committee column: a ``potlab.potential.Committee`` of 5 members (one
grouped forward and backward pass) against the 5 members' calculators called one after
another on the 50-atom cell; the final line gives the geometric mean of that speed-up
over the architectures, the table each one.

Memory: DimeNet++ at the seed000 preset needs more than 24 GB for one energy+forces call
on the 3,200-atom supercell (6.5 million triplets); use --max-atoms to stop earlier.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.md.verlet import VelocityVerlet

import potlab.models.mace  # noqa: F401  (mace before e3nn)
from potlab.models import available
from potlab.potential import Committee, Potential

HERE = Path(__file__).resolve().parent
LGPS = HERE / "data" / "structures" / "Li10GeP2S12_P42mc_pymatgen.cif"
REPEATS = [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (4, 2, 2), (4, 4, 2), (4, 4, 4)]
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def time_calls(calc, atoms, n_calls: int, budget_s: float) -> float:
    """Median seconds per energy+forces call; positions move a little between calls."""
    rng = np.random.default_rng(0)
    atoms = atoms.copy()
    atoms.calc = calc
    base = atoms.positions.copy()
    atoms.get_forces()  # warm-up (first-call set-up, code generation)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < n_calls and (time.perf_counter() - start < budget_s or len(times) < 2):
        atoms.positions = base + rng.normal(0, 0.01, base.shape)
        t = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class OneAfterAnother(Calculator):
    """The reference for a committee: its members' calculators called one after another
    (each builds its own neighbour list and runs its own forward and backward pass)."""

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]

    def __init__(self, calcs):
        super().__init__()
        self.calcs = calcs

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        res = []
        for c in self.calcs:
            c.calculate(self.atoms, ["energy", "forces"], all_changes)
            res.append((c.results["energy"], c.results["forces"]))
        self.results = {"energy": float(np.mean([e for e, _ in res])),
                        "forces": np.mean([f for _, f in res], axis=0)}


def committee_ratio(name: str, elements, dtype, cell, n_calls: int, size: int = 5) -> tuple[float, float, bool]:
    """Seconds per call of ``size`` members one after another and of the Committee."""
    pots = []
    for seed in range(size):
        torch.manual_seed(seed)
        pots.append(Potential(name, {"preset": "seed000"}, elements).to(dtype).eval())
    com = Committee(pots)
    t_seq = time_calls(OneAfterAnother([p.calculator() for p in pots]), cell, n_calls, 30.0)
    t_com = time_calls(com.calculator(), cell, n_calls, 30.0)
    return t_seq, t_com, com.grouped


def md_steps_per_second(calc, atoms, steps: int) -> float:
    atoms = atoms.copy()
    atoms.calc = calc
    thermalize_momenta(atoms, temperature_K=600, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=2 * units.fs)
    dyn.run(2)  # warm-up
    t = time.perf_counter()
    dyn.run(steps)
    return steps / (time.perf_counter() - t)


def ns_per_day(steps_per_s: float, timestep_fs: float = 2.0) -> float:
    return steps_per_s * 86400 * timestep_fs * 1e-6


def fit_exponent(n_atoms: list[int], seconds: list[float]) -> float:
    """Slope of log t against log N."""
    if len(n_atoms) < 2:
        return float("nan")
    return float(np.polyfit(np.log(n_atoms), np.log(seconds), 1)[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the 50-atom cell only")
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--dtype", choices=list(_DTYPES), default="float32")
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--max-atoms", type=int, default=3200, help="largest supercell to time")
    p.add_argument("--md-steps", type=int, default=20)
    p.add_argument("--out", default=str(HERE / "out" / "speed.csv"))
    args = p.parse_args()
    dtype = _DTYPES[args.dtype]
    names = args.models or list(available())
    cell = read(LGPS)
    elements = sorted(set(cell.numbers.tolist()))
    sizes = REPEATS[:1] if args.quick else [r for r in REPEATS if len(cell) * np.prod(r) <= args.max_atoms]
    rows = []
    mace_ratio = float("nan")
    print(f"{len(cell)}-atom LGPS, {args.dtype}, {torch.get_num_threads()} threads; "
          f"seed000 presets (untrained weights)", flush=True)
    for name in names:
        torch.manual_seed(0)
        pot = Potential(name, {"preset": "seed000"}, elements).to(dtype).eval()
        calc = pot.calculator()
        n_params = sum(q.numel() for q in pot.parameters())
        n_atoms, secs = [], []
        for rep in sizes:
            atoms = cell.repeat(rep)
            budget = 20.0 if len(atoms) <= 400 else 40.0
            s = time_calls(calc, atoms, args.calls if len(atoms) <= 400 else 3, budget)
            n_atoms.append(len(atoms))
            secs.append(s)
            print(f"  {name:<10} {len(atoms):>5} atoms: {s * 1000:9.1f} ms/call", flush=True)
        sps = md_steps_per_second(calc, cell, args.md_steps)
        big = [(n, s) for n, s in zip(n_atoms, secs) if n >= 200]
        row = {
            "model": name, "params": n_params, "ms_per_call_50": secs[0] * 1000,
            "md_steps_per_s_50": sps, "ns_per_day_50": ns_per_day(sps),
            "exponent": fit_exponent([n for n, _ in big], [s for _, s in big]),
            **{f"ms_per_call_{n}": s * 1000 for n, s in zip(n_atoms, secs)},
        }
        t_seq, t_com, grouped = committee_ratio(name, elements, dtype, cell, max(5, args.calls // 2))
        row.update(committee5_ms_per_call_50=t_com * 1000, sequential5_ms_per_call_50=t_seq * 1000,
                   committee5_vs_sequential=t_seq / t_com, committee_grouped=grouped)
        print(f"  {name:<10} committee of 5: {t_com * 1000:.1f} ms/call, one after another "
              f"{t_seq * 1000:.1f} ms/call ({t_seq / t_com:.2f}x{'' if grouped else ', not grouped'})", flush=True)
        if name == "mace":
            from mace.calculators import MACECalculator

            ref = MACECalculator(models=pot.model.mace, device="cpu", default_dtype=args.dtype)
            t_ref = time_calls(ref, cell, args.calls, 20.0)
            row["macetorch_ms_per_call_50"] = t_ref * 1000
            mace_ratio = t_ref / secs[0]
            # same model: potlab's forces are its output scale times mace-torch's
            a, b = cell.copy(), cell.copy()
            a.calc, b.calc = calc, ref
            f_diff = np.abs(a.get_forces() - float(pot.scale) * b.get_forces()).max()
            row["max_force_difference"] = float(f_diff)
        rows.append(row)
    print()
    head = (f"{'model':<10}{'params':>11}{'ms/call(50)':>13}{'MD steps/s':>12}{'ns/day':>9}{'exponent':>10}"
            f"{'committee5 ms':>15}{'5 in turn ms':>14}{'speed-up':>10}")
    print(head)
    for r in rows:
        print(f"{r['model']:<10}{r['params']:>11,}{r['ms_per_call_50']:>13.1f}{r['md_steps_per_s_50']:>12.2f}"
              f"{r['ns_per_day_50']:>9.3f}{r['exponent']:>10.2f}{r['committee5_ms_per_call_50']:>15.1f}"
              f"{r['sequential5_ms_per_call_50']:>14.1f}{r['committee5_vs_sequential']:>10.2f}")
    for r in rows:
        if "macetorch_ms_per_call_50" in r:
            print(f"mace-torch MACECalculator, same model: {r['macetorch_ms_per_call_50']:.1f} ms/call "
                  f"(max |F_potlab - F_macetorch| = {r['max_force_difference']:.2e} eV/A)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "model", k))
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print(f"csv: {out}")
    # one figure for the committee: the geometric mean of the speed-ups over the architectures
    ratios = [r["committee5_vs_sequential"] for r in rows]
    committee = math.exp(sum(math.log(x) for x in ratios) / len(ratios)) if ratios else math.nan
    print(f"mace_vs_macetorch={mace_ratio:.3f} committee5_vs_sequential={committee:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
