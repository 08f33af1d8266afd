"""Benchmark: exact totals and SMACT-filter-allowed counts for orders 2-4 (seed 001, Table 2).

    .venv/bin/python benchmarks/space_count.py [--oxidation-states smact14] [--max-factor 8]

Prints each order's counts, the time to compute it, and whether it matches Table 2
(smact14, max factor 8). Target: all quaternary counts in at most 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

TABLE2 = {2: (225_879, 13_464), 3: (77_637_589, 10_779_441), 4: (16_902_534_325, 2_909_434_982)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--oxidation-states", default="smact14")
    ap.add_argument("--max-factor", type=int, default=8)
    ap.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4])
    args = ap.parse_args()
    from potlab.space.counting import count

    print(f"oxidation states {args.oxidation_states}, max factor {args.max_factor}")
    for k in args.orders:
        t0 = time.perf_counter()
        r = count(k, args.max_factor, args.oxidation_states)
        dt = time.perf_counter() - t0
        ref = TABLE2.get(k) if (args.oxidation_states, args.max_factor) == ("smact14", 8) else None
        check = "" if ref is None else ("  matches Table 2" if (r["total"], r["allowed"]) == ref else f"  TABLE 2 MISMATCH {ref}")
        print(f"order {k}: total {r['total']:,}  allowed {r['allowed']:,}  "
              f"({r['element_sets']:,} element sets)  {dt:.1f} s{check}")


if __name__ == "__main__":
    main()
