"""``potlab md``: run MD with a potlab model or any ASE calculator (``module:Class``).

Thin: builds the protocol from flags (or ``--protocol FILE.yaml``, flags override), loads the
structure and the calculator, calls :func:`potlab.md.runner.run_protocol`, prints a summary.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

_FLAG_KEYS = {"ensemble": "ensemble", "thermostat": "thermostat", "temperature": "temperatures_K",
              "timestep": "timestep_fs", "steps": "steps", "friction": "friction_per_fs",
              "seed": "seed", "interval": "interval", "engine": "engine", "repeats": "repeats",
              "model": "model", "structure": "structure", "supercell": "supercell",
              "dtype": "dtype", "pressure": "pressure_GPa", "barostat": "barostat"}


def add_parser(subparsers):
    p = subparsers.add_parser("md", help="molecular dynamics with a potlab model or any ASE calculator")
    p.add_argument("--model", help="potlab model file, or an ASE calculator as module:Class "
                   "(e.g. ase.calculators.emt:EMT)")
    p.add_argument("--calc-kwargs", default=None, help="JSON keyword arguments for module:Class")
    p.add_argument("--structure", help="any file ase.io.read reads (cif, extxyz, POSCAR)")
    p.add_argument("--supercell", type=int, nargs=3, default=None, metavar=("A", "B", "C"))
    p.add_argument("--protocol", help="YAML protocol (flags given here override its keys)")
    p.add_argument("--ensemble", choices=["nve", "nvt", "npt"])
    p.add_argument("--thermostat", choices=["langevin", "nose-hoover", "bussi"])
    p.add_argument("--barostat", choices=["isotropic", "anisotropic"])
    p.add_argument("--temperature", type=float, nargs="+", help="K (several: one run each)")
    p.add_argument("--pressure", type=float, help="GPa (npt)")
    p.add_argument("--timestep", type=float, help="fs")
    p.add_argument("--steps", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--friction", type=float, help="Langevin friction, 1/fs")
    p.add_argument("--seed", type=int)
    p.add_argument("--interval", type=int, help="store a frame and a log row every N steps")
    p.add_argument("--engine", choices=["ase", "lammps"])
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--out", required=True, help="output directory (one T{temp}K_r{repeat} per run)")
    p.add_argument("--restart", action="store_true", help="start over instead of resuming")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)
    return p


def load_calculator(model: str, calc_kwargs: dict | None = None, dtype: str | None = None):
    """A potlab model file, or ``module:Class`` of any ASE calculator built with ``calc_kwargs``."""
    if Path(model).exists():
        import potlab

        return potlab.load(model, dtype=dtype).calculator()
    if ":" in model:
        module, _, name = model.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"--model {model}: cannot import {name!r} from {module!r}: {err}") from None
        return cls(**(calc_kwargs or {}))
    raise FileNotFoundError(f"--model {model}: no such model file (or give module:Class)")


def run(args) -> int:
    import ase.io

    from potlab.md.protocol import load_protocol, parse_protocol
    from potlab.md.runner import run_protocol

    raw = {}
    if args.protocol:
        raw = load_protocol(args.protocol).model_dump(exclude_unset=True)
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            raw[key] = value
    if args.calc_kwargs:
        try:
            raw["calc_kwargs"] = json.loads(args.calc_kwargs)
        except json.JSONDecodeError as err:
            raise ValueError(f"--calc-kwargs: not valid JSON: {err}") from None
    protocol = parse_protocol(raw, source=args.protocol or "<command line>")
    if not protocol.model or not protocol.structure:
        raise ValueError("--model and --structure are required (flags or protocol keys)")
    atoms = ase.io.read(protocol.structure)
    if protocol.supercell:
        atoms = atoms.repeat(protocol.supercell)
    calc = load_calculator(protocol.model, protocol.calc_kwargs, protocol.dtype)
    results = run_protocol(atoms, calc, protocol, args.out, resume=not args.restart)
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(r) for r in results], indent=1))
        return 0
    print(f"{'run':<16}{'T_final/K':>10}{'steps':>8}{'steps/s':>9}{'ns/day':>9}  stability")
    for r in results:
        s = r.stability
        stab = "stable" if s.stable else f"t_stab {s.t_stab_ps:.3f} ps: {s.reason}"
        print(f"{Path(r.out_dir).name:<16}{r.final_temperature_K:>10.1f}{r.steps:>8}"
              f"{r.steps_per_s:>9.1f}{r.ns_per_day:>9.3f}  {stab}")
        if r.activation_energy_eV is not None:
            print(f"{'':<16}activation energy (max work): {r.activation_energy_eV:.3f} eV")
    print(f"output: {args.out}")
    return 0
