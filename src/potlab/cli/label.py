"""``potlab label``: label structures with a reference method, cached in an ASE database.

Thin: parses arguments, calls :class:`potlab.reference.Labeller`, writes extxyz with
``REF_energy``/``REF_forces``/``REF_stress``, prints ``labelled=N failed=M cached=K``.
Exit status 0 when at least one structure was labelled (or there were none to label),
1 when every structure failed, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "label", help="label structures with xTB, a foundation model or any ASE calculator",
        description="Label every frame of IN with a reference method and write OUT (extxyz "
                    "with REF_energy, REF_forces, REF_stress). Results are cached in an ASE "
                    "database: structures already labelled with the same method and "
                    "settings cost nothing, and an interrupted run resumes.")
    p.add_argument("input", metavar="IN",
                   help="structures: extxyz, ASE db, or any file ase.io.read reads (cif, POSCAR)")
    p.add_argument("output", metavar="OUT", help="labelled frames (extxyz)")
    p.add_argument("--method", default="gfn2-xtb",
                   help="gfn2-xtb (default), gfn1-xtb, chgnet, sevennet, or module:Class")
    p.add_argument("--calc-kwargs", default="{}",
                   help="method settings as JSON, e.g. '{\"max_iterations\": 500}'")
    p.add_argument("--charge", type=float, default=None,
                   help="total charge (e) when a frame has no info['charge'] (xTB)")
    p.add_argument("--spin", type=float, default=None,
                   help="unpaired electrons when a frame has no info['spin'] (xTB)")
    p.add_argument("--store", default=None,
                   help="label store (SQLite ASE db; default: OUT with suffix .labels.db)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes")
    p.add_argument("--min-distance", type=float, default=0.5,
                   help="pairs closer than this (A) are failures without a call (default 0.5)")
    p.add_argument("--retry-failures", action="store_true", help="recompute stored failures")
    p.add_argument("--failures", default=None, help="also write the failed structures (extxyz)")
    p.set_defaults(func=run)
    return p


def calc_kwargs(text: str) -> dict:
    """``--calc-kwargs`` as a dict; InputError naming the flag when it is not a JSON object."""
    from potlab.errors import InputError

    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--calc-kwargs is not valid JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise InputError(f"--calc-kwargs must be a JSON object, got {text!r}")
    return settings


def run(args) -> int:
    from potlab.data import read_structures
    from potlab.data.writers import write_extxyz
    from potlab.reference import Labeller, get_method

    settings = calc_kwargs(args.calc_kwargs)
    for key in ("charge", "spin"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    method = get_method(args.method, settings)
    method.check()  # a method that cannot be built is bad input: exit 2, nothing stored
    frames = read_structures(args.input)
    out = Path(args.output)
    store = args.store or str(out.with_suffix(".labels.db"))
    labeller = Labeller(method, store=store, scheduler=args.scheduler, workers=args.workers,
                        min_distance=args.min_distance, retry_failures=args.retry_failures)
    res = labeller.label(frames)
    write_extxyz(out, res.labelled)
    for f in res.failures[:20]:
        print(f"failed: frame {f.index}: {f.error_type}: {f.reason}", file=sys.stderr)
    if len(res.failures) > 20:
        print(f"failed: ... and {len(res.failures) - 20} more", file=sys.stderr)
    if args.failures and res.failures:
        failed = [f.structure.copy() for f in res.failures]
        for atoms, f in zip(failed, res.failures):
            atoms.info.update(failure_reason=f.reason, failure_type=f.error_type,
                              failure_index=f.index)
        write_extxyz(args.failures, failed)
    print(res.summary())
    print(f"wrote {out} ({method.name}, {method.version()}); store {store}")
    return 1 if frames and not res.labelled else 0
