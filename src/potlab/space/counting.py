"""Exact counts of the compositional space and of SMACT-filter-allowed compositions.

A composition of order k is k distinct elements with stoichiometric factors
``n_i`` in ``1..max_factor`` and ``gcd(n) == 1`` (so MgO and Mg2O2 count once). It is
*allowed* when SMACT's ``smact_filter`` (species_unique=False) would return it: some
choice of one oxidation state per element makes it charge neutral (seed 001, eq. 1)
and passes ``pauling_test`` (every cation strictly less electronegative than every
anion; an element with no Pauling electronegativity fails).

Nothing here loops over compositions in Python. Elements are sorted by
electronegativity, so an element set is fully described, for the filter, by its
*signature*: the oxidation-state list at each position and which neighbours tie in
electronegativity. Each signature admits a few *role patterns* (each element a cation,
an anion or neutral). For a pattern, the set of charge-neutral stoichiometries is a
boolean tensor over ``n`` (shape ``(max_factor,) * k``) got from the reachable cation
and anion charge sums: ``neutral[n_+, n_-] = any_q L[n_+, q] & R[n_-, q]``, one small
matrix product. Tensors are computed once per distinct (sorted) pattern, packed to
bitsets, OR-ed per signature and popcounted; counts are weighted by how many element
sets share a signature.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from potlab.space.species import (
    DEFAULT_OXIDATION_STATES,
    MAX_ATOMIC_NUMBER,
    Species,
    load_species,
)
from potlab.space.stoichiometry import (
    check_max_factor,
    check_order,
    combinations_array,
    coprime_mask,
)

log = logging.getLogger(__name__)

_CATION, _ANION, _NEUTRAL = 0, 1, 2


@lru_cache(maxsize=8192)
def _reachable_sums(value_sets: tuple[tuple[int, ...], ...], max_factor: int) -> np.ndarray:
    """Charge sums reachable by a group of ions.

    Returns float32 0/1 [max_factor**a, q] with q = max_factor * sum(max(v)) + 1: row
    (n_1..n_a) in C order, column s is 1 when sum_i n_i v_i = s for some v_i in
    value_sets[i]. An empty group reaches only 0.
    """
    q = max_factor * sum(max(v) for v in value_sets) + 1
    sums = np.zeros((1, q), dtype=bool)
    sums[0, 0] = True
    for values in value_sets:
        new = np.zeros((sums.shape[0], max_factor, q), dtype=bool)
        for n in range(1, max_factor + 1):
            for v in values:
                shift = n * v
                new[:, n - 1, shift:] |= sums[:, : q - shift]
        sums = new.reshape(-1, q)
    return sums.astype(np.float32)


@dataclass
class _PatternCodes:
    """Integer codes for (role, value set) of one position in a role pattern."""

    cation_sets: list[tuple[int, ...]]
    anion_sets: list[tuple[int, ...]]  # absolute values

    @property
    def neutral_code(self) -> int:
        return len(self.cation_sets) + len(self.anion_sets)

    @property
    def base(self) -> int:
        return self.neutral_code + 1

    def decode(self, code: int) -> tuple[int, tuple[int, ...]]:
        if code < len(self.cation_sets):
            return _CATION, self.cation_sets[code]
        if code < self.neutral_code:
            return _ANION, self.anion_sets[code - len(self.cation_sets)]
        return _NEUTRAL, ()


@dataclass
class SpaceIndex:
    """Filter results for every element set of one order.

    Attributes:
        species: the element table (electronegativity order).
        order, max_factor: k and the largest stoichiometric factor.
        combos: [n_sets, k] element indices (ascending = electronegativity order).
        signature: [n_sets] index into the per-signature arrays.
        allowed_bits: [n_signatures, n_bytes] packed bitsets over the stoichiometry grid
            (C order, see :func:`stoichiometry_grid`) of allowed coprime tuples.
        allowed_per_signature: [n_signatures] popcounts of ``allowed_bits``.
    """

    species: Species
    order: int
    max_factor: int
    combos: np.ndarray
    signature: np.ndarray
    allowed_bits: np.ndarray
    allowed_per_signature: np.ndarray
    _sig_codes: np.ndarray = field(repr=False)

    @property
    def n_sets(self) -> int:
        return len(self.combos)

    @property
    def coprime_per_set(self) -> int:
        return int(coprime_mask(self.order, self.max_factor).sum())

    @property
    def total(self) -> int:
        return self.n_sets * self.coprime_per_set

    def allowed_per_set(self) -> np.ndarray:
        """[n_sets] allowed compositions of each element set (int64)."""
        return self.allowed_per_signature[self.signature]

    @property
    def allowed(self) -> int:
        mult = np.bincount(self.signature, minlength=len(self.allowed_per_signature))
        return int(np.dot(mult.astype(np.int64), self.allowed_per_signature))

    def signature_of(self, element_indices: np.ndarray) -> np.ndarray:
        """Signature row for sorted element-index sets [m, k]; -1 if never seen."""
        codes = _signature_codes(self.species, np.asarray(element_indices, dtype=np.int64))
        pos = np.searchsorted(self._sig_codes, codes)
        pos = np.clip(pos, 0, len(self._sig_codes) - 1)
        return np.where(self._sig_codes[pos] == codes, pos, -1)

    def is_allowed(self, element_indices: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """Filter verdicts for compositions given as sorted element indices [m, k] and
        reduced factors [m, k] (each in 1..max_factor). Returns bool [m]."""
        element_indices = np.atleast_2d(element_indices)
        factors = np.atleast_2d(np.asarray(factors, dtype=np.int64))
        sig = self.signature_of(element_indices)
        flat = np.ravel_multi_index(tuple((factors - 1).T), (self.max_factor,) * self.order)
        bits = np.unpackbits(self.allowed_bits[np.maximum(sig, 0)], axis=1, count=self.grid_size)
        return (sig >= 0) & bits[np.arange(len(flat)), flat].astype(bool)

    @property
    def grid_size(self) -> int:
        return self.max_factor**self.order


def _element_classes(species: Species) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Class id per element (same oxidation-state list); non-filterable -> class 0."""
    lists: list[tuple[int, ...]] = [()]
    cls = np.zeros(species.n_elements, dtype=np.int64)
    for i, states in enumerate(species.oxidation_states):
        if not species.filterable[i]:
            continue
        if states not in lists:
            lists.append(states)
        cls[i] = lists.index(states)
    return cls, lists


def _signature_codes(species: Species, combos: np.ndarray) -> np.ndarray:
    """int64 code of (class per position, electronegativity ties) for each element set."""
    cls, lists = _element_classes(species)
    base = len(lists)
    c = cls[combos]
    code = np.zeros(len(combos), dtype=np.int64)
    for i in range(combos.shape[1]):
        code = code * base + c[:, i]
    en = species.eneg[combos]
    ties = en[:, 1:] == en[:, :-1]
    for i in range(ties.shape[1]):
        code = code * 2 + ties[:, i]
    return code


def _decode_signatures(codes: np.ndarray, order: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    codes = codes.copy()
    ties = np.zeros((len(codes), order - 1), dtype=bool)
    for i in reversed(range(order - 1)):
        ties[:, i] = codes % 2 == 1
        codes //= 2
    cls = np.zeros((len(codes), order), dtype=np.int64)
    for i in reversed(range(order)):
        cls[:, i] = codes % base
        codes //= base
    return cls, ties


def _valid_patterns(cls: np.ndarray, ties: np.ndarray, lists: list[tuple[int, ...]]):
    """Role patterns passing the Pauling test with available roles, per signature.

    Returns (patterns [n_pat, k], valid [n_sig, n_pat] bool).
    """
    k = cls.shape[1]
    has = np.zeros((len(lists), 3), dtype=bool)
    for j, states in enumerate(lists):
        if j == 0:
            continue  # non-filterable: no role passes
        has[j, _CATION] = any(s > 0 for s in states)
        has[j, _ANION] = any(s < 0 for s in states)
        has[j, _NEUTRAL] = 0 in states
    patterns = np.array(list(itertools.product(range(3), repeat=k)), dtype=np.int64)
    # tie_chain[:, i, j]: all consecutive ties between positions i..j (i < j)
    valid = np.ones((len(cls), len(patterns)), dtype=bool)
    for p, pat in enumerate(patterns):
        n_cat = int((pat == _CATION).sum())
        n_an = int((pat == _ANION).sum())
        if (n_cat == 0) != (n_an == 0):
            valid[:, p] = False  # cannot be neutral: all charges of one sign
            continue
        ok = np.ones(len(cls), dtype=bool)
        for i in range(k):
            ok &= has[cls[:, i], pat[i]]
        for i, j in itertools.combinations(range(k), 2):
            if pat[i] == _ANION and pat[j] == _CATION:
                ok[:] = False  # anion less electronegative than (or as) a cation
            elif pat[i] == _CATION and pat[j] == _ANION:
                ok &= ~ties[:, i:j].all(axis=1)  # equal electronegativity fails
        valid[:, p] = ok
    return patterns, valid


def build_index(
    order: int,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
    max_atomic_number: int = MAX_ATOMIC_NUMBER,
) -> SpaceIndex:
    """Apply the SMACT filter to every element set of ``order`` elements, exactly.

    Args:
        order: 2, 3 or 4.
        max_factor: largest stoichiometric factor (the paper uses 8).
        oxidation_states: SMACT set name or oxidation-state file path.
        max_atomic_number: elements 1..this (the paper uses 103).
    """
    order, max_factor = check_order(order), check_max_factor(max_factor)
    species = load_species(oxidation_states, max_atomic_number)
    return _build_index_cached(order, max_factor, species)


@lru_cache(maxsize=4)
def _build_index_cached(order: int, max_factor: int, species: Species) -> SpaceIndex:
    combos = combinations_array(species.n_elements, order)
    codes = _signature_codes(species, combos.astype(np.int64))
    sig_codes, signature = np.unique(codes, return_inverse=True)
    cls_lists = _element_classes(species)[1]
    cls, ties = _decode_signatures(sig_codes, order, len(cls_lists))
    patterns, valid = _valid_patterns(cls, ties, cls_lists)
    log.info(
        "order %d: %d element sets, %d signatures, %d valid (signature, pattern) pairs",
        order,
        len(combos),
        len(sig_codes),
        int(valid.sum()),
    )

    # (role, value set) code per position for every valid (signature, pattern)
    cation_sets = sorted({tuple(s for s in L if s > 0) for L in cls_lists[1:]} - {()})
    anion_sets = sorted({tuple(sorted(-s for s in L if s < 0)) for L in cls_lists[1:]} - {()})
    pc = _PatternCodes(cation_sets, anion_sets)
    cat_id = np.full(len(cls_lists), -1, dtype=np.int64)
    an_id = np.full(len(cls_lists), -1, dtype=np.int64)
    for j, L in enumerate(cls_lists[1:], start=1):
        pos = tuple(s for s in L if s > 0)
        neg = tuple(sorted(-s for s in L if s < 0))
        if pos:
            cat_id[j] = cation_sets.index(pos)
        if neg:
            an_id[j] = len(cation_sets) + anion_sets.index(neg)
    sig_idx, pat_idx = np.nonzero(valid)
    key = np.zeros(len(sig_idx), dtype=np.int64)
    for i in range(order):
        role = patterns[pat_idx, i]
        c = cls[sig_idx, i]
        code = np.where(
            role == _CATION, cat_id[c], np.where(role == _ANION, an_id[c], pc.neutral_code)
        )
        key = key * pc.base + code
    keys, key_of_pair = np.unique(key, return_inverse=True)
    key_bits = _pattern_bitsets(keys, pc, order, max_factor)

    grid = max_factor**order
    n_bytes = (grid + 7) // 8
    allowed_bits = np.zeros((len(sig_codes), n_bytes), dtype=np.uint8)
    if len(sig_idx):
        # pairs are sorted by signature (np.nonzero is row-major): OR-reduce per run
        starts = np.flatnonzero(np.r_[True, sig_idx[1:] != sig_idx[:-1]])
        chunk = 1 << 16
        for a in range(0, len(starts), chunk):
            s = starts[a : a + chunk]
            stop = starts[a + chunk] if a + chunk < len(starts) else len(sig_idx)
            block = key_bits[key_of_pair[s[0] : stop]]
            allowed_bits[sig_idx[s]] = np.bitwise_or.reduceat(block, s - s[0], axis=0)
    allowed_per_sig = np.bitwise_count(allowed_bits).sum(axis=1, dtype=np.int64)
    return SpaceIndex(
        species=species,
        order=order,
        max_factor=max_factor,
        combos=combos,
        signature=signature.astype(np.int32),
        allowed_bits=allowed_bits,
        allowed_per_signature=allowed_per_sig,
        _sig_codes=sig_codes,
    )


def _pattern_bitsets(
    keys: np.ndarray, pc: _PatternCodes, order: int, max_factor: int
) -> np.ndarray:
    """Packed bitsets [n_keys, n_bytes] of coprime charge-neutral tuples per pattern key."""
    grid = max_factor**order
    coprime = coprime_mask(order, max_factor).reshape((max_factor,) * order)
    out = np.zeros((len(keys), (grid + 7) // 8), dtype=np.uint8)
    canonical: dict[tuple[int, ...], np.ndarray] = {}
    for r, key in enumerate(keys.tolist()):
        codes = []
        for _ in range(order):
            codes.append(key % pc.base)
            key //= pc.base
        codes = codes[::-1]
        perm = sorted(range(order), key=lambda i: codes[i])
        can = tuple(codes[i] for i in perm)
        tensor = canonical.get(can)
        if tensor is None:
            tensor = _neutral_tensor([pc.decode(c) for c in can], max_factor)
            canonical[can] = tensor
        inv = np.argsort(perm)
        ordered = np.transpose(tensor, inv) & coprime
        out[r] = np.packbits(ordered.ravel())
    log.debug("%d pattern keys, %d canonical tensors", len(keys), len(canonical))
    return out


def _neutral_tensor(roles: list[tuple[int, tuple[int, ...]]], max_factor: int) -> np.ndarray:
    """Bool tensor [(max_factor,) * k] of charge-neutral factor tuples for one pattern.

    ``roles`` is sorted: cations, then anions (absolute values), then neutral positions.
    """
    cat = tuple(v for r, v in roles if r == _CATION)
    an = tuple(v for r, v in roles if r == _ANION)
    n_neutral = sum(1 for r, _ in roles if r == _NEUTRAL)
    left = _reachable_sums(cat, max_factor)  # [m**a, q_left]
    right = _reachable_sums(an, max_factor)  # [m**b, q_right]
    q = min(left.shape[1], right.shape[1])
    hits = (left[:, :q] @ right[:, :q].T) > 0  # [m**a, m**b]
    shape = (max_factor,) * (len(cat) + len(an))
    tensor = hits.reshape(shape)
    tensor = tensor.reshape(shape + (1,) * n_neutral)
    return np.broadcast_to(tensor, (max_factor,) * len(roles))


def count(
    order: int,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
    max_atomic_number: int = MAX_ATOMIC_NUMBER,
) -> dict:
    """Totals and filter-allowed counts for one order.

    Returns a dict with ``order``, ``max_factor``, ``oxidation_states``, ``n_elements``,
    ``n_species``, ``element_sets``, ``total``, ``allowed``, ``forbidden``.
    """
    index = build_index(order, max_factor, oxidation_states, max_atomic_number)
    total, allowed = index.total, index.allowed
    return {
        "order": index.order,
        "max_factor": index.max_factor,
        "oxidation_states": index.species.name,
        "n_elements": index.species.n_elements,
        "n_species": index.species.n_species,
        "element_sets": index.n_sets,
        "total": total,
        "allowed": allowed,
        "forbidden": total - allowed,
    }
