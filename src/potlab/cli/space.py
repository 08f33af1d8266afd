"""``potlab space ...``: count, enumerate, label and map inorganic compositions.

Thin: parses arguments, calls :mod:`potlab.space`, formats the results. The ``potlab``
command attaches it with :func:`add_parser`; :func:`main` runs it alone (tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from potlab.cli._output import emit
from potlab.space.species import DEFAULT_OXIDATION_STATES, OXIDATION_STATE_SETS, SpaceError

_CATS = ("standard", "missing", "interesting", "unlikely")


def _common(p: argparse.ArgumentParser, order_default: int | None = None) -> None:
    if order_default is None:
        p.add_argument("--order", type=int, required=True, help="number of elements: 2, 3 or 4")
    else:
        p.add_argument("--order", type=int, default=order_default, help=f"2, 3 or 4 (default {order_default})")
    p.add_argument("--max-factor", type=int, default=8, help="largest stoichiometric factor (default 8)")
    p.add_argument(
        "--oxidation-states", default=DEFAULT_OXIDATION_STATES,
        help=f"SMACT set ({', '.join(OXIDATION_STATE_SETS)}) or a file (default {DEFAULT_OXIDATION_STATES})",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``space`` command and its sub-commands to an argparse subparsers object."""
    space = subparsers.add_parser("space", help="chemical space: count, enumerate, label, map compositions")
    sub = space.add_subparsers(dest="space_command", required=True)

    p = sub.add_parser("count", help="exact totals and SMACT-filter-allowed counts")
    p.add_argument("--order", type=int, nargs="+", required=True, help="one or more of 2, 3, 4")
    p.add_argument("--max-factor", type=int, default=8)
    p.add_argument("--oxidation-states", default=DEFAULT_OXIDATION_STATES)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(space_func=_count)

    p = sub.add_parser("enumerate", help="write every allowed composition of an order to Parquet")
    _common(p)
    p.add_argument("--out", required=True, help="output Parquet file")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: local processes)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes")
    p.add_argument("--sets-per-chunk", type=int, default=20_000)
    p.add_argument("--limit-sets", type=int, default=None, help="only the first N element sets (trial runs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(space_func=_enumerate)

    p = sub.add_parser("label", help="standard / missing / interesting / unlikely counts")
    _common(p, order_default=2)
    p.add_argument("--known", default=None, help="CSV or text file of known formulas (default: bundled MP binary snapshot)")
    p.add_argument("--column", default=None, help="formula column of the CSV")
    p.add_argument("--materials-project", action="store_true",
                   help="fetch the known list from the Materials Project API ($MP_API_KEY or --api-key)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(space_func=_label)

    p = sub.add_parser("map", help="PCA / t-SNE / UMAP maps of compositional embeddings (PNG + HTML)")
    _common(p, order_default=2)
    p.add_argument("--embeddings", nargs="+", default=None,
                   help="ElementEmbeddings names (default: magpie mat2vec megnet16 oliynyk skipatom random_200)")
    p.add_argument("--methods", nargs="+", default=None, help="pca tsne umap (default: all)")
    p.add_argument("--out", default="maps", help="output folder")
    p.add_argument("--per-category", type=int, default=3000, help="sampled points per category")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--known", default=None, help="known list (default: bundled MP binary snapshot)")
    p.add_argument("--no-html", action="store_true", help="skip the interactive HTML maps")
    p.add_argument("--periodic-table", action="store_true",
                   help="also draw Figure 1 (element frequencies in allowed compositions of --order)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(space_func=_map)
    space.set_defaults(func=run)
    return space


def _count(args) -> None:
    from potlab.space.counting import count

    results = [count(k, args.max_factor, args.oxidation_states) for k in args.order]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return
    print(f"oxidation states {results[0]['oxidation_states']}, {results[0]['n_species']} species, "
          f"max factor {args.max_factor}")
    print(f"{'order':>5} {'total':>16} {'allowed':>15} {'allowed %':>9}")
    for r in results:
        print(f"{r['order']:>5} {r['total']:>16,} {r['allowed']:>15,} {100 * r['allowed'] / r['total']:>8.2f}%")


def _enumerate(args) -> None:
    from potlab.space.enumeration import enumerate_allowed

    r = enumerate_allowed(args.order, args.out, max_factor=args.max_factor, oxidation_states=args.oxidation_states,
                          sets_per_chunk=args.sets_per_chunk, scheduler=args.scheduler, workers=args.workers,
                          limit_sets=args.limit_sets)
    emit(args, r, [f"wrote {r['rows']:,} allowed compositions of {r['element_sets']:,} element sets to {r['path']}"], indent=2)


def _read_known(args):
    from potlab.space.known import fetch_materials_project, read_known

    if getattr(args, "materials_project", False):
        return fetch_materials_project(args.order, api_key=args.api_key, oxidation_states=args.oxidation_states)
    return read_known(args.known, column=getattr(args, "column", None), oxidation_states=args.oxidation_states)


def _label(args) -> None:
    from potlab.space.known import label_counts

    r = label_counts(args.order, _read_known(args), max_factor=args.max_factor, oxidation_states=args.oxidation_states)
    lines = [f"order {r['order']}, {r['total']:,} compositions, {r['allowed']:,} allowed; known list: {r['snapshot']}"]
    lines += [f"  {c:<12} {r[c]:>15,} ({100 * r[c] / r['total']:.2f}%)" for c in _CATS]
    if r["known_outside"]:
        lines.append(f"  ({r['known_outside']} known compositions have a factor above {r['max_factor']})")
    emit(args, r, lines, indent=2)


def _map(args) -> None:
    from potlab.space.embeddings import EMBEDDINGS
    from potlab.space.enumeration import element_frequencies
    from potlab.space.maps import METHODS, make_maps, periodic_table_heatmap

    r = make_maps(args.order, args.out, embeddings=args.embeddings or EMBEDDINGS, methods=args.methods or METHODS,
                  n_per_category=args.per_category, seed=args.seed, known=_read_known(args),
                  max_factor=args.max_factor, oxidation_states=args.oxidation_states, html=not args.no_html)
    if args.periodic_table:
        freq = element_frequencies(args.order, max_factor=args.max_factor, oxidation_states=args.oxidation_states)
        r["periodic_table"] = periodic_table_heatmap(
            freq, f"{args.out}/periodic_table_order{args.order}.png",
            title=f"Element frequency in allowed order-{args.order} compositions ({args.oxidation_states})")
    lines = [f"points per category: {r['n_points']}", f"dropped (element without a vector): {r['dropped']}"]
    lines += [f"wrote {p}" for p in r["png"] + r["html"] + [r["csv"]] + ([r["periodic_table"]] if "periodic_table" in r else [])]
    emit(args, r, lines, indent=2)


def run(args) -> int:
    """Run a parsed ``space`` command; SpaceError becomes a one-line message and exit 2."""
    try:
        args.space_func(args)
    except SpaceError as exc:
        print(f"potlab space: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``[space] SUBCOMMAND ...`` (the leading ``space`` is optional)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["space"] and argv[:1] not in (["-h"], ["--help"]):
        argv = ["space", *argv]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="potlab")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
