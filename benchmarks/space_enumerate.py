"""Benchmark: SMACT's own filter per element set vs potlab's exact index; ternary
enumeration to Parquet through the executor.

    .venv/bin/python benchmarks/space_enumerate.py [--order 3] [--workers 2] [--smact-sets 40]

Prints smact_filter's time per element set (and the hours it implies for the whole
order on one core), potlab's time to filter every set, and the rows/time of writing
all allowed compositions to Parquet.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smact-sets", type=int, default=40)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from smact import Element
    from smact.screening import smact_filter

    from potlab.space.counting import build_index
    from potlab.space.enumeration import enumerate_allowed

    t0 = time.perf_counter()
    index = build_index(args.order)
    t_index = time.perf_counter() - t0
    sp = index.species
    good = np.flatnonzero(sp.filterable)
    rng = np.random.default_rng(0)
    sets = [[sp.symbols[i] for i in np.sort(rng.choice(good, args.order, replace=False))] for _ in range(args.smact_sets)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        els = [[Element(s) for s in st] for st in sets]
        t0 = time.perf_counter()
        for e in els:
            smact_filter(e, threshold=8, species_unique=False, oxidation_states_set="smact14")
        per_set = (time.perf_counter() - t0) / len(els)
    n_sets = math.comb(len(good), args.order)
    print(f"smact_filter: {per_set * 1e3:.1f} ms per order-{args.order} element set -> "
          f"{per_set * n_sets / 3600:.2f} h for all {n_sets:,} sets on one core")
    print(f"potlab build_index (every set, exact): {t_index:.2f} s -> {per_set * n_sets / t_index:,.0f}x faster")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / f"order{args.order}.parquet"
    t0 = time.perf_counter()
    r = enumerate_allowed(args.order, out, workers=args.workers)
    dt = time.perf_counter() - t0
    size = out.stat().st_size / 2**20
    print(f"enumerate order {args.order}: {r['rows']:,} rows in {r['chunks']} chunks, {dt:.1f} s, "
          f"{size:.0f} MiB at {out}")


if __name__ == "__main__":
    main()
