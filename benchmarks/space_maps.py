"""Benchmark: seed 001's Figures 1-5 at full size (3000 points per category, six
embeddings x PCA/t-SNE/UMAP) for one order.

    .venv/bin/python benchmarks/space_maps.py [--order 2] [--out maps] [--per-category 3000]

Prints the points per category, compositions dropped per embedding, the files written
and the time taken.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--order", type=int, default=2)
    ap.add_argument("--out", default="maps")
    ap.add_argument("--per-category", type=int, default=3000)
    ap.add_argument("--methods", nargs="+", default=["pca", "tsne", "umap"])
    args = ap.parse_args()
    from potlab.space.enumeration import element_frequencies
    from potlab.space.maps import make_maps, periodic_table_heatmap

    t0 = time.perf_counter()
    r = make_maps(args.order, args.out, methods=args.methods, n_per_category=args.per_category, seed=0)
    dt = time.perf_counter() - t0
    pt = periodic_table_heatmap(element_frequencies(2), f"{args.out}/periodic_table_binary.png",
                                title="Element frequency in allowed binary compositions (smact14)")
    print(f"points per category: {r['n_points']}")
    print(f"dropped per embedding: {r['dropped']}")
    print(f"known list: {r['snapshot']}")
    print(f"maps: {dt:.1f} s; files: {', '.join(r['png'])}, {len(r['html'])} HTML, {r['csv']}, {pt}")


if __name__ == "__main__":
    main()
