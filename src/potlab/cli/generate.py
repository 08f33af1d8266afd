"""``potlab generate ...``: configuration generators, each writing extended XYZ.

Thin: parses arguments into the generators' pydantic parameters
(:mod:`potlab.reference.generate`) and writes the structures with
:func:`potlab.data.writers.write_extxyz`.
"""

from __future__ import annotations

import argparse

_KINDS = ("rattle", "isolated", "volume-scan", "liquid", "crystal", "md")


def add_parser(subparsers) -> argparse.ArgumentParser:
    g = subparsers.add_parser("generate", help="generate configurations to label (extxyz)")
    sub = g.add_subparsers(dest="generate_command", required=True)

    p = sub.add_parser("rattle", help="randomly displaced copies (Gaussian or uniform)")
    p.add_argument("input", metavar="IN", help="structures (any file ase.io.read reads)")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--amplitude", type=float, default=0.05,
                   help="A: standard deviation (gaussian) or half-width (uniform)")
    p.add_argument("--distribution", choices=["gaussian", "uniform"], default="gaussian")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(gen=_rattle)

    p = sub.add_parser("isolated", help="isolated atoms (one per element) and molecules")
    p.add_argument("input", metavar="IN", help="a periodic frame (molecules are cut from it)")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--what", choices=["molecules", "atoms", "both"], default="both")
    p.add_argument("--box", type=float, default=None,
                   help="cubic box edge (A); default: non-periodic")
    p.set_defaults(gen=_isolated)

    p = sub.add_parser("volume-scan", help="rigid-molecule isotropic expansion/compression")
    p.add_argument("input", metavar="IN", help="periodic molecular frame(s)")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--min-density", type=float, default=None, help="g/cm^3")
    p.add_argument("--max-density", type=float, default=None, help="g/cm^3")
    p.add_argument("--points", type=int, default=7)
    p.add_argument("--scales", type=float, nargs="+", default=None, help="linear cell factors")
    p.set_defaults(gen=_volume_scan)

    p = sub.add_parser("liquid", help="molecular liquid box from SMILES at a density")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--smiles", nargs="+", required=True)
    p.add_argument("--counts", type=int, nargs="+", required=True)
    p.add_argument("--density", type=float, required=True, help="g/cm^3")
    p.add_argument("--min-distance", type=float, default=1.6, help="A between molecules")
    p.add_argument("--boxes", type=int, default=1, help="independent boxes (seeds seed..)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(gen=_liquid)

    p = sub.add_parser("crystal", help="crystal from CIF: supercell, ordered occupancies")
    p.add_argument("input", metavar="CIF")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--supercell", type=int, nargs=3, default=(1, 1, 1))
    p.add_argument("--order", choices=["random", "pymatgen"], default="random")
    p.add_argument("--structures", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(gen=_crystal)

    p = sub.add_parser("md", help="reference MD sampling with a labeller's calculator")
    p.add_argument("input", metavar="IN", help="starting structure(s)")
    p.add_argument("output", metavar="OUT", help="labelled frames (extxyz)")
    p.add_argument("--method", default="gfn2-xtb",
                   help="gfn2-xtb, gfn1-xtb, chgnet, sevennet or module:Class")
    p.add_argument("--calc-kwargs", default="{}", help="method settings (JSON)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[300.0], help="K")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--ramp-fs", type=float, default=100.0, help="ramp from 100 K (fs)")
    p.add_argument("--steps", type=int, default=200, help="NVT steps after the ramp")
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--every", type=int, default=10, help="keep every k-th frame")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    p.add_argument("--workdir", default=None, help="run directory (default: OUT.md/)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(gen=_md)

    g.set_defaults(func=run)
    return g


def run(args) -> int:
    from potlab.data.writers import write_extxyz

    frames = args.gen(args)
    write_extxyz(args.output, frames)
    print(f"wrote {len(frames)} structures to {args.output}")
    return 0


def _read(path):
    from potlab.data import read_structures

    return read_structures(path)


def _rattle(args):
    from potlab.reference.generate import RattleParams, rattle

    return rattle(_read(args.input), RattleParams(copies=args.copies, amplitude=args.amplitude,
                                                  distribution=args.distribution, seed=args.seed))


def _isolated(args):
    from potlab.reference.generate import IsolatedParams, isolated_atoms, isolated_molecules

    params = IsolatedParams(box=args.box)
    frames = _read(args.input)
    out = []
    if args.what in ("atoms", "both"):
        out += isolated_atoms([s for f in frames for s in f.get_chemical_symbols()], params)
    if args.what in ("molecules", "both"):
        out += [m for f in frames for m in isolated_molecules(f, params)]
    return out


def _volume_scan(args):
    from potlab.reference.generate import VolumeScanParams, volume_scan

    params = VolumeScanParams(min_density=args.min_density, max_density=args.max_density,
                              points=args.points, scales=args.scales)
    return [s for f in _read(args.input) for s in volume_scan(f, params)]


def _liquid(args):
    from potlab.reference.generate import LiquidParams, liquid_box

    return [liquid_box(LiquidParams(smiles=args.smiles, counts=args.counts, density=args.density,
                                    min_distance=args.min_distance, seed=args.seed + k))
            for k in range(args.boxes)]


def _crystal(args):
    from potlab.reference.generate import CrystalParams, crystal_structures

    return crystal_structures(args.input, CrystalParams(
        supercell=tuple(args.supercell), order=args.order, structures=args.structures,
        seed=args.seed))


def _md(args):
    from pathlib import Path

    from potlab.cli.label import calc_kwargs
    from potlab.reference import get_method
    from potlab.reference.generate.md_sampling import MDSamplingParams, md_sampling

    method = get_method(args.method, calc_kwargs(args.calc_kwargs))
    method.check()
    params = MDSamplingParams(temperatures=args.temperatures, repeats=args.repeats,
                              ramp_fs=args.ramp_fs, steps=args.steps, timestep=args.timestep,
                              every=args.every, friction=args.friction, seed=args.seed)
    workdir = Path(args.workdir) if args.workdir else Path(str(args.output) + ".md")
    return [f for i, s in enumerate(_read(args.input))
            for f in md_sampling(s, method, params, workdir / f"structure_{i}")]
