"""``potlab md``: run MD with a potlab model, a named reference method (gfn2-xtb, chgnet,
sevennet, ...) or any ASE calculator (``module:Class``).

Thin: builds the protocol from flags (or ``--protocol FILE.yaml``, flags override), reads the
structure, resolves the calculator (:func:`potlab.calculators.resolve_calculator`), calls
:func:`potlab.md.runner.run_protocol`, prints a summary. Bad input exits 2 with one line.
"""

from __future__ import annotations

import json
from pathlib import Path

_FLAG_KEYS = {"ensemble": "ensemble", "thermostat": "thermostat", "temperature": "temperatures_K",
              "timestep": "timestep_fs", "steps": "steps", "friction": "friction_per_fs",
              "tdamp": "tdamp_fs",
              "seed": "seed", "interval": "interval", "engine": "engine", "repeats": "repeats",
              "model": "model", "structure": "structure", "supercell": "supercell",
              "dtype": "dtype", "device": "device", "pressure": "pressure_GPa", "barostat": "barostat", "skin": "skin_A"}


def add_parser(subparsers):
    p = subparsers.add_parser("md", help="molecular dynamics with a potlab model or any ASE calculator")
    p.add_argument("--model", help="potlab model file, a method (gfn2-xtb, gfn1-xtb, chgnet, "
                   "sevennet) or an ASE calculator as module:Class (e.g. ase.calculators.emt:EMT)")
    p.add_argument("--calc-kwargs", default=None,
                   help="JSON keyword arguments for a method or module:Class")
    p.add_argument("--structure", help="any file ase.io.read reads (cif, extxyz, POSCAR)")
    p.add_argument("--supercell", type=int, nargs=3, default=None, metavar=("A", "B", "C"))
    p.add_argument("--protocol", help="YAML protocol (flags given here override its keys)")
    p.add_argument("--ensemble", choices=["nve", "nvt", "npt"])
    p.add_argument("--thermostat", choices=["langevin", "nose-hoover", "bussi", "berendsen"])
    p.add_argument("--barostat", choices=["isotropic", "anisotropic"])
    p.add_argument("--temperature", type=float, nargs="+", help="K (several: one run each)")
    p.add_argument("--pressure", type=float, help="GPa (npt)")
    p.add_argument("--timestep", type=float, help="fs")
    p.add_argument("--steps", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--friction", type=float, help="Langevin friction, 1/fs")
    p.add_argument("--tdamp", type=float, help="Nose-Hoover / Bussi / Berendsen time constant, fs")
    p.add_argument("--seed", type=int)
    p.add_argument("--interval", type=int, help="store a frame and a log row every N steps")
    p.add_argument("--engine", choices=["ase", "lammps", "batched"],
                   help="batched: every temperature and repeat in one model call per step "
                   "(potlab models; nve and nvt with any thermostat)")
    p.add_argument("--skin", type=float, help="Verlet skin (A) of a potlab potential's neighbour list (every engine)")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--device", help="device of a potlab model: cpu, cuda, cuda:N or auto "
                   "(a GPU when present); default cpu")
    p.add_argument("--out", required=True, help="output directory (one T{temp}K_r{repeat} per run)")
    p.add_argument("--restart", action="store_true", help="start over instead of resuming")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)
    return p


def load_calculator(model: str, calc_kwargs: dict | None = None, dtype: str | None = None,
                    atoms=None, device: str | None = None):
    """See :func:`potlab.calculators.resolve_calculator`."""
    from potlab.calculators import resolve_calculator

    return resolve_calculator(model, calc_kwargs, dtype, atoms, device=device)


def read_structure(path: str, supercell=None):
    """The first frame of any file ``ase.io.read`` reads; ValueError naming the file."""
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--structure {path}: no such file")
    try:
        atoms = ase.io.read(p, index=0)
    except Exception as err:  # noqa: BLE001 - every reader failure is bad input here
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"--structure {path}: cannot read a structure: {first[:200]}") from None
    atoms.calc = None
    return atoms.repeat(tuple(supercell)) if supercell else atoms


def run(args) -> int:
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
        if not isinstance(raw["calc_kwargs"], dict):
            raise ValueError("--calc-kwargs: must be a JSON object")
    protocol = parse_protocol(raw, source=args.protocol or "<command line>")
    if not protocol.model or not protocol.structure:
        raise ValueError("--model and --structure are required (flags or protocol keys)")
    atoms = read_structure(protocol.structure, protocol.supercell)
    calc = load_calculator(protocol.model, protocol.calc_kwargs, protocol.dtype, atoms,
                           device=protocol.device)
    if protocol.engine == "batched" and not hasattr(calc, "potential"):
        raise ValueError(f"--engine batched needs a potlab potential, not {protocol.model}")
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
