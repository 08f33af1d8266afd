"""``potlab export MODEL OUT``: a trained potential as a file other tools run.

``--format pt2`` (the default, unless OUT ends in ``.model``): one ``torch.export`` program
(:func:`potlab.potential.export.export_potential`); ``--format mace``: a mace-torch
``ScaleShiftMACE`` model file with E0, shift and scale inside
(:func:`potlab.potential.export.export_mace`). Thin: loads, calls the library, prints one line.
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export", help="write a trained potential as a torch.export file (.pt2) or a "
        "mace-torch model file (--format mace)")
    p.add_argument("model", help="potlab potential file (model.pt)")
    p.add_argument("out", help="output file (.pt2, or .model for --format mace)")
    p.add_argument("--format", choices=["pt2", "mace"], default=None,
                   help="pt2: torch.export program; mace: mace-torch ScaleShiftMACE "
                   "(MACE potentials; read by mace.calculators.MACECalculator). "
                   "Default: mace when OUT ends in .model, else pt2")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="dtype of the exported model (--format mace: float64 by default)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import potlab
    from potlab.potential.export import ExportError, export_mace, export_potential

    fmt = args.format or ("mace" if Path(args.out).suffix == ".model" else "pt2")
    pot = potlab.load(args.model, dtype=args.dtype)
    if not hasattr(pot, "model_name"):
        raise ValueError(f"{args.model}: a committee; export one member's potential file")
    if fmt == "mace":
        path = export_mace(pot, args.out, dtype=args.dtype or "float64")
        print(f"exported {pot.model_name} (cutoff {pot.cutoff} A, elements {pot.elements}) as a "
              f"mace-torch ScaleShiftMACE to {path}")
        return 0
    try:
        path = export_potential(pot, args.out)
    except ExportError as err:
        print(f"potlab export: {err}", file=sys.stderr)
        return 3
    print(f"exported {pot.model_name} (cutoff {pot.cutoff} A, elements {pot.elements}) to {path}")
    return 0
