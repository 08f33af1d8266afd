"""Exact counts of the chemical space against seed 001's Table 2 and SMACT's own filter."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import smact.screening as smact_screening

from potlab.space.counting import build_index, count
from potlab.space.species import SpaceError, load_species
from potlab.space.stoichiometry import combinations_array, coprime_mask, count_total


def _smact_allowed(symbols, max_factor=8, oxidation_states="smact14"):
    """Set of (symbols, factors) that smact_filter allows for one element set."""
    from smact import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        els = [Element(s) for s in symbols]
        out = smact_screening.smact_filter(
            els, threshold=max_factor, species_unique=False, oxidation_states_set=oxidation_states
        )
    return {tuple(sorted(zip(syms, ratio))) for syms, ratio in out}


def _ours_allowed(index, elements):
    """Our allowed compositions of one sorted element-index set, same form as above."""
    sig = index.signature_of(np.array([elements]))[0]
    bits = np.unpackbits(index.allowed_bits[sig], count=index.grid_size).astype(bool)
    grid = np.stack(np.meshgrid(*[np.arange(1, index.max_factor + 1)] * index.order, indexing="ij"), -1)
    grid = grid.reshape(-1, index.order)
    syms = [index.species.symbols[e] for e in elements]
    return {tuple(sorted(zip(syms, map(int, g)))) for g in grid[bits]}


def _brute_coprime(k, m):
    return sum(1 for t in itertools.product(range(1, m + 1), repeat=k) if math.gcd(*t) == 1)


@pytest.mark.parametrize("k,m", [(2, 8), (3, 8), (4, 8), (2, 5), (3, 6), (4, 3)])
def test_total_is_binomial_times_coprime_tuples(k, m):
    assert count_total(k, m) == math.comb(103, k) * _brute_coprime(k, m)


def test_table2_totals():
    assert [count_total(k) for k in (2, 3, 4)] == [225_879, 77_637_589, 16_902_534_325]


def test_table2_allowed_binary_ternary():
    assert count(2)["allowed"] == 13_464
    c3 = count(3)
    assert c3["total"] == 77_637_589 and c3["allowed"] == 10_779_441
    assert c3["n_species"] == 421 and c3["n_elements"] == 103


def test_mgo_and_mg2o2_count_once():
    index = build_index(2, 2)
    sp = index.species
    mg, o = sorted([sp.index()["Mg"], sp.index()["O"]])
    allowed = _ours_allowed(index, [mg, o])
    # factors up to 2: MgO, MgO2, Mg2O; never Mg2O2
    assert (("Mg", 1), ("O", 1)) in allowed
    assert (("Mg", 2), ("O", 2)) not in allowed
    assert not coprime_mask(2, 2)[-1]  # (2, 2) is not a reduced tuple
    assert count_total(2, 2) == math.comb(103, 2) * 3


def test_combinations_array_matches_itertools():
    got = combinations_array(9, 4)
    assert [tuple(r) for r in got.tolist()] == list(itertools.combinations(range(9), 4))


def test_binary_allowed_equals_smact_brute_force():
    index = build_index(2)
    sp = index.species
    ours = set()
    for i, j in combinations_array(sp.n_elements, 2).tolist():
        ours |= _ours_allowed(index, [i, j])
    theirs = set()
    good = [s for s, f in zip(sp.symbols, sp.filterable) if f]
    for pair in itertools.combinations(good, 2):
        theirs |= _smact_allowed(pair)
    assert len(theirs) == 13_464
    assert ours == theirs


@pytest.mark.parametrize("order,n_sets", [(3, 60), (4, 12)])
def test_random_sets_agree_with_smact_filter(order, n_sets):
    index = build_index(order)
    sp = index.species
    rng = np.random.default_rng(order)
    good = np.flatnonzero(sp.filterable)
    checked = 0
    for _ in range(n_sets):
        els = np.sort(rng.choice(good, size=order, replace=False))
        symbols = [sp.symbols[e] for e in els]
        assert _ours_allowed(index, els.tolist()) == _smact_allowed(symbols), symbols
        checked += 1
    assert checked == n_sets


def test_random_compositions_agree_one_by_one():
    """Sampled ternary compositions, allowed and forbidden, judged one by one."""
    from potlab.space.enumeration import sample

    index = build_index(3)
    sp = index.species
    for category, expect in (("allowed", True), ("forbidden", False)):
        els, fac = sample(3, category, 40, seed=7)
        assert index.is_allowed(els, fac).tolist() == [expect] * len(els)
        for e, f in zip(els, fac):
            symbols = [sp.symbols[i] for i in e]
            comp = tuple(sorted(zip(symbols, map(int, f))))
            verdict = all(sp.filterable[e]) and comp in _smact_allowed(symbols)
            assert verdict is expect, comp


def test_oxidation_state_sets_and_errors():
    assert load_species("smact14").n_species == 421
    icsd = load_species("icsd24")
    assert icsd.n_species != 421
    with pytest.raises(SpaceError, match="unknown oxidation-state set 'smact99'"):
        load_species("smact99")
    for bad in (1, 5, 0):
        with pytest.raises(SpaceError, match="order must be 2, 3 or 4"):
            count(bad)


@pytest.mark.parametrize("oxidation_states", ["icsd24", "wiki"])
def test_other_set_agrees_with_smact(oxidation_states):
    """icsd24 (SMACT 4 default) and wiki (has oxidation state 0): ternary sets."""
    index = build_index(3, 8, oxidation_states)
    sp = index.species
    rng = np.random.default_rng(3)
    good = np.flatnonzero(sp.filterable)
    for _ in range(20):
        els = np.sort(rng.choice(good, size=3, replace=False))
        symbols = [sp.symbols[e] for e in els]
        assert _ours_allowed(index, els.tolist()) == _smact_allowed(symbols, 8, oxidation_states)


def test_elements_without_electronegativity_never_pass():
    sp = load_species("smact14")
    dead = {s for s, f in zip(sp.symbols, sp.filterable) if not f}
    assert dead == {"He", "Ne", "Ar", "Pm", "Rn", "Lr"}
    index = build_index(2)
    per_set = index.allowed_per_set()
    has_dead = ~sp.filterable[index.combos].all(axis=1)
    assert per_set[has_dead].sum() == 0
