"""Enumerate allowed compositions to Parquet and draw uniform samples from a category.

Compositions are handled as arrays: sorted element indices ``[m, k]`` (into the
species table, electronegativity order) and reduced factors ``[m, k]``. Enumeration
streams element-set chunks through :func:`potlab.executor.run_jobs` (local processes
or Dask) and writes one Parquet row group per chunk. Sampling never enumerates a
space: it draws element sets in proportion to their count in the category, then a
uniform factor tuple among that set's members.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from potlab.executor import run_jobs
from potlab.space.counting import SpaceIndex, build_index
from potlab.space.known import CATEGORIES, KnownList, known_in_space, read_known
from potlab.space.species import DEFAULT_OXIDATION_STATES, SpaceError, Species
from potlab.space.stoichiometry import (
    check_max_factor,
    check_order,
    coprime_mask,
    stoichiometry_grid,
)

log = logging.getLogger(__name__)

SAMPLE_CATEGORIES = ("allowed", "forbidden") + CATEGORIES


def formulas(species: Species, elements: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Formula strings (electronegativity order, factor 1 omitted), e.g. ``"NaN"``,
    ``"Fe2O3"``. Arrays [m, k] -> object array [m]."""
    elements = np.atleast_2d(elements)
    factors = np.atleast_2d(factors)
    symbols = np.asarray(species.symbols, dtype=object)
    out = np.full(len(elements), "", dtype=object)
    for i in range(elements.shape[1]):
        count = np.where(factors[:, i] == 1, "", factors[:, i].astype(str)).astype(object)
        out = out + symbols[elements[:, i]] + count
    return out


@dataclass(frozen=True)
class _ChunkJob:
    order: int
    max_factor: int
    oxidation_states: str
    start: int
    stop: int


def allowed_in_sets(index: SpaceIndex, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Allowed compositions of element sets ``start:stop`` (in set order, then factor order).

    Returns (element indices [m, k], factors [m, k]).
    """
    sig = index.signature[start:stop]
    if len(sig) == 0:
        return np.zeros((0, index.order), np.int64), np.zeros((0, index.order), np.int64)
    bits = np.unpackbits(index.allowed_bits[sig], axis=1, count=index.grid_size).astype(bool)
    rows, cols = np.nonzero(bits)
    grid = stoichiometry_grid(index.order, index.max_factor)
    return index.combos[start + rows].astype(np.int64), grid[cols].astype(np.int64)


def composition_table(species: Species, elements: np.ndarray, factors: np.ndarray):
    """A pyarrow Table: ``formula``, ``element_1..k`` (symbols), ``n_1..k`` (uint8)."""
    import pyarrow as pa

    k = elements.shape[1]
    cols = {"formula": pa.array(formulas(species, elements, factors).tolist(), pa.string())}
    symbols = np.asarray(species.symbols, dtype=object)
    for i in range(k):
        cols[f"element_{i + 1}"] = pa.array(symbols[elements[:, i]].tolist(), pa.string())
    for i in range(k):
        cols[f"n_{i + 1}"] = pa.array(factors[:, i].astype(np.uint8))
    return pa.table(cols)


def _run_chunk(job: _ChunkJob):
    index = build_index(job.order, job.max_factor, job.oxidation_states)
    els, fac = allowed_in_sets(index, job.start, job.stop)
    return composition_table(index.species, els, fac)


def enumerate_allowed(
    order: int,
    out: str | Path,
    *,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
    sets_per_chunk: int = 20_000,
    scheduler=None,
    workers: int | None = None,
    limit_sets: int | None = None,
) -> dict:
    """Write every allowed composition of ``order`` elements to a Parquet file.

    Jobs of ``sets_per_chunk`` element sets run through :func:`potlab.executor.run_jobs`
    (``scheduler`` None: local processes; an address: Dask), a few at a time, each
    appended as a row group; the file is written to ``out + ".part"`` and renamed when
    complete. ``limit_sets`` keeps only the first element sets (for trials).

    Returns a dict with ``path``, ``rows``, ``chunks``, ``element_sets``.
    """
    import pyarrow.parquet as pq

    order, max_factor = check_order(order), check_max_factor(max_factor)
    index = build_index(order, max_factor, oxidation_states)
    n_sets = index.n_sets if limit_sets is None else min(int(limit_sets), index.n_sets)
    bounds = list(range(0, n_sets, sets_per_chunk)) + [n_sets]
    jobs = [
        _ChunkJob(order, max_factor, oxidation_states, a, b) for a, b in itertools.pairwise(bounds)
    ]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    schema = composition_table(index.species, *allowed_in_sets(index, 0, 0)).schema
    rows = 0
    batch = max(1, 4 * (workers or 2))
    with pq.ParquetWriter(tmp, schema) as writer:
        for a in range(0, len(jobs), batch):
            for table in run_jobs(
                _run_chunk, jobs[a : a + batch], scheduler=scheduler, workers=workers
            ):
                writer.write_table(table)
                rows += table.num_rows
            log.info(
                "enumerated %d of %d chunks, %d rows", min(a + batch, len(jobs)), len(jobs), rows
            )
    tmp.replace(out)
    return {"path": str(out), "rows": rows, "chunks": len(jobs), "element_sets": n_sets}


def _draw_from_sets(index, weights, want_allowed, n, rng):
    """n draws: set ~ weights, then a uniform factor tuple among allowed/forbidden ones."""
    p = weights / weights.sum()
    sets = rng.choice(len(weights), size=n, p=p)
    bits = np.unpackbits(index.allowed_bits[index.signature[sets]], axis=1, count=index.grid_size)
    member = bits.astype(bool) if want_allowed else ~bits.astype(bool)
    member &= coprime_mask(index.order, index.max_factor)[None, :]
    counts = member.sum(axis=1)
    r = (rng.random(n) * counts).astype(np.int64)
    col = (np.cumsum(member, axis=1) > r[:, None]).argmax(axis=1)
    grid = stoichiometry_grid(index.order, index.max_factor)
    return index.combos[sets].astype(np.int64), grid[col].astype(np.int64)


def _keys(elements: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """One int64 key per composition (elements < 128, factors < 17)."""
    key = np.zeros(len(elements), dtype=np.int64)
    for i in range(elements.shape[1]):
        key = key * 128 + elements[:, i]
        key = key * 17 + factors[:, i]
    return key


def sample(
    order: int,
    category: str,
    n: int,
    *,
    seed: int = 0,
    known: KnownList | None = None,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random sample without replacement of ``n`` compositions of a category.

    Categories: ``allowed``, ``forbidden`` (filter only) or ``standard``, ``missing``,
    ``interesting``, ``unlikely`` (need ``known``; default the bundled snapshot). If the
    category has fewer than ``n`` members, all of them are returned. Seeded.

    Returns (element indices [m, k], factors [m, k]), in random order.
    """
    order, max_factor = check_order(order), check_max_factor(max_factor)
    if category not in SAMPLE_CATEGORIES:
        raise SpaceError(
            f"unknown category {category!r}: choose one of {', '.join(SAMPLE_CATEGORIES)}"
        )
    rng = np.random.default_rng(seed)
    index = build_index(order, max_factor, oxidation_states)
    k_els = np.zeros((0, order), np.int64)
    k_fac = np.zeros((0, order), np.int64)
    if category in CATEGORIES:
        known = known if known is not None else read_known(oxidation_states=oxidation_states)
        k_els, k_fac, _ = known_in_space(index, known)
    if category in ("standard", "interesting"):
        verdict = index.is_allowed(k_els, k_fac) if len(k_els) else np.zeros(0, bool)
        pick = np.flatnonzero(verdict if category == "standard" else ~verdict)
        pick = rng.permutation(pick)[:n]
        return k_els[pick], k_fac[pick]
    want_allowed = category in ("allowed", "missing")
    per_set = index.allowed_per_set().astype(np.float64)
    if not want_allowed:
        per_set = index.coprime_per_set - per_set
    population = int(per_set.sum())
    excluded = np.unique(_keys(k_els, k_fac))
    if category in ("missing", "unlikely"):
        verdict = index.is_allowed(k_els, k_fac) if len(k_els) else np.zeros(0, bool)
        population -= int((verdict == want_allowed).sum())
    n = min(int(n), population)
    if n <= 0:
        return np.zeros((0, order), np.int64), np.zeros((0, order), np.int64)
    got_e, got_f, got_k = [], [], np.zeros(0, np.int64)
    for _ in range(100):
        need = n - len(got_k)
        if need <= 0:
            break
        els, fac = _draw_from_sets(index, per_set, want_allowed, int(need * 1.2) + 16, rng)
        keys = _keys(els, fac)
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)  # keep draw order
        fresh = first[~np.isin(keys[first], got_k) & ~np.isin(keys[first], excluded)][:need]
        got_e.append(els[fresh])
        got_f.append(fac[fresh])
        got_k = np.concatenate([got_k, keys[fresh]])
    els, fac = np.concatenate(got_e), np.concatenate(got_f)
    if len(els) < n:
        log.warning("sample of %s: got %d of %d after 100 rounds", category, len(els), n)
    return els, fac


def element_frequencies(
    order: int = 2, *, max_factor: int = 8, oxidation_states: str = DEFAULT_OXIDATION_STATES
) -> dict[str, int]:
    """How many allowed compositions of ``order`` elements contain each element (Figure 1)."""
    index = build_index(order, max_factor, oxidation_states)
    per_set = index.allowed_per_set()
    freq = np.zeros(index.species.n_elements, dtype=np.int64)
    for i in range(index.order):
        np.add.at(freq, index.combos[:, i], per_set)
    return {s: int(f) for s, f in zip(index.species.symbols, freq)}
