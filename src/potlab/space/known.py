"""Known compositions and the four categories of seed 001 (Table 1).

A known list is a set of compositions read as chemical formulas (never as anything
else: sodium nitride is "NaN", not a missing value) from a CSV or text file, the
bundled Materials Project binary snapshot, or the Materials Project API.

Categories, by filter verdict x presence in the known list:
standard (allowed, known), missing (allowed, unknown), interesting (forbidden, known),
unlikely (forbidden, unknown).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from potlab.space.counting import SpaceIndex, build_index
from potlab.space.species import DEFAULT_OXIDATION_STATES, SpaceError, Species, load_species
from potlab.space.stoichiometry import check_max_factor, check_order

log = logging.getLogger(__name__)

CATEGORIES = ("standard", "missing", "interesting", "unlikely")
BUNDLED_SNAPSHOT = "mp_binary_known.csv"
BUNDLED_DESCRIPTION = (
    "Materials Project binary snapshot of SMACT's crystal-space tutorial (Feb 2025, "
    "10,180 compositions; WMD-group/SMACT@cf3ff233 docs/tutorials/data/binary/mp_data; "
    "data CC-BY-4.0 Materials Project)"
)
# Real elements past the 103 of the space: a formula with one is outside the space.
_HEAVY = ["Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"]
_FORMULA_COLUMNS = (
    "formula",
    "fp",
    "formula_pretty",
    "reduced_formula",
    "composition",
    "pretty_formula",
)


def parse_formula(formula: str) -> dict[str, float]:
    """Element amounts of a formula: ``"Fe2O3"``, ``"Ca(OH)2"``, ``"NaN"`` (Na + N), parsed
    by pymatgen's ``Composition`` (SMACT depends on pymatgen). Symbols that are not elements
    come back as they are, for the caller to name (``"NA"`` -> N and "A").

    Raises:
        SpaceError: empty formula, unbalanced brackets or a stray character.
    """
    from pymatgen.core import Composition

    text = str(formula).strip()
    if not text:
        raise SpaceError("empty formula")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            amounts = Composition(text).get_el_amt_dict()
    except (ValueError, KeyError, TypeError) as exc:
        raise SpaceError(f"formula {formula!r}: {exc}") from None
    amounts = {el: v for el, v in amounts.items() if v != 0}
    if not amounts:
        raise SpaceError(f"formula {formula!r}: no elements")
    return amounts


def reduce_amounts(amounts: dict[str, float]) -> dict[str, int] | None:
    """Integer amounts divided by their gcd; None when an amount is not an integer."""
    ints = {}
    for el, v in amounts.items():
        if v <= 0 or abs(v - round(v)) > 1e-8:
            return None
        ints[el] = round(v)
    g = math.gcd(*ints.values())
    return {el: v // g for el, v in ints.items()}


@dataclass
class KnownList:
    """Known compositions keyed by order.

    Attributes:
        source: where the list came from (file path, "bundled snapshot", "Materials Project API").
        description: provenance, shown in results ("which snapshot a result used").
        compositions: order -> (element indices [m, k] sorted, reduced factors [m, k]),
            one row per distinct composition, indices into ``species``.
        n_read: formulas read; n_duplicates: repeated compositions dropped;
        n_skipped: formulas that cannot be in any space (non-integer amounts, elements
            past Lr).
    """

    source: str
    description: str
    species: Species
    compositions: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    n_read: int = 0
    n_duplicates: int = 0
    n_skipped: int = 0

    def of_order(self, order: int) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros((0, order), np.int64), np.zeros((0, order), np.int64))
        return self.compositions.get(order, empty)

    def require_order(self, order: int) -> None:
        """SpaceError when the list has no composition of ``order`` elements at all (the
        bundled snapshot holds binaries only): every known count would silently be 0."""
        if len(self.of_order(order)[0]):
            return
        have = ", ".join(str(k) for k in sorted(self.compositions) if len(self.compositions[k][0]))
        raise SpaceError(
            f"known list {self.source} has no compositions of {order} elements (it has orders: "
            f"{have or 'none'}), so every {order}-element composition would count as unknown; "
            f"give a list with --known FILE (CSV with a formula column, or one formula per "
            f"line) or fetch one with --materials-project (needs $MP_API_KEY)"
        )

    @classmethod
    def from_formulas(
        cls,
        formulas: list[str],
        *,
        source: str,
        description: str = "",
        oxidation_states: str = DEFAULT_OXIDATION_STATES,
        line_numbers: list[int] | None = None,
    ) -> KnownList:
        """Build from formula strings. Unknown element symbols raise SpaceError naming
        the source and line."""
        species = load_species(oxidation_states)
        index = species.index()
        rows: dict[int, set[tuple]] = {}
        n_skipped = n_dup = 0
        for i, formula in enumerate(formulas):
            where = f"{source}, line {line_numbers[i] if line_numbers else i + 1}"
            try:
                amounts = parse_formula(formula)
            except SpaceError as exc:
                raise SpaceError(f"{where}: {exc}") from None
            unknown = [el for el in amounts if el not in index and el not in _HEAVY]
            if unknown:
                raise SpaceError(f"{where}: unknown element {unknown[0]!r} in formula {formula!r}")
            reduced = reduce_amounts(amounts)
            if reduced is None or any(el in _HEAVY for el in amounts):
                n_skipped += 1
                continue
            items = sorted((index[el], n) for el, n in reduced.items())
            key = (tuple(e for e, _ in items), tuple(n for _, n in items))
            bucket = rows.setdefault(len(items), set())
            if key in bucket:
                n_dup += 1
            bucket.add(key)
        comps = {}
        for k, keys in rows.items():
            keys = sorted(keys)
            comps[k] = (
                np.array([e for e, _ in keys], dtype=np.int64).reshape(-1, k),
                np.array([n for _, n in keys], dtype=np.int64).reshape(-1, k),
            )
        out = cls(source, description or source, species, comps, len(formulas), n_dup, n_skipped)
        log.info(
            "known list %s: %d formulas, %d distinct compositions, %d duplicates, %d skipped",
            source,
            len(formulas),
            sum(len(v[0]) for v in comps.values()),
            n_dup,
            n_skipped,
        )
        return out


def bundled_snapshot_path() -> Path:
    """Path of the bundled Materials Project binary snapshot CSV."""
    return Path(str(resources.files("potlab.space") / "data" / BUNDLED_SNAPSHOT))


def read_known(
    path: str | Path | None = None,
    *,
    column: str | None = None,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
) -> KnownList:
    """Read a known list: a CSV with a formula column (``formula``, ``fp``,
    ``formula_pretty``, ``reduced_formula``... or ``column``), or a text file with one
    formula per line. ``path=None`` reads the bundled Materials Project binary snapshot.
    """
    import pandas as pd

    if path is None:
        path, description = bundled_snapshot_path(), BUNDLED_DESCRIPTION
        source = "bundled snapshot"
    else:
        path = Path(path)
        description = source = str(path)
    if not path.is_file():
        raise SpaceError(f"known list {path}: no such file")
    if path.suffix.lower() in (".csv", ".tsv"):
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        # every cell a string: formulas like "NaN" or "NA" must stay formulas
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False)
        if column is None:
            lower = {c.lower(): c for c in df.columns}
            column = next((lower[c] for c in _FORMULA_COLUMNS if c in lower), None)
            if column is None:
                column = df.columns[0]
        if column not in df.columns:
            raise SpaceError(
                f"known list {path}: no column {column!r} (columns: {list(df.columns)})"
            )
        formulas = df[column].str.strip().tolist()
        lines = list(range(2, len(formulas) + 2))
    else:
        lines, formulas = [], []
        for i, raw in enumerate(path.read_text().splitlines(), start=1):
            text = raw.split("#", 1)[0].strip()
            if text:
                formulas.append(text.split()[0])
                lines.append(i)
    keep = [i for i, f in enumerate(formulas) if f]
    return KnownList.from_formulas(
        [formulas[i] for i in keep],
        source=source,
        description=description,
        oxidation_states=oxidation_states,
        line_numbers=[lines[i] for i in keep],
    )


def fetch_materials_project(
    order: int,
    *,
    api_key: str | None = None,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
    endpoint: str = "https://api.materialsproject.org/materials/summary/",
    per_page: int = 1000,
    timeout: float = 60.0,
) -> KnownList:
    """Known compositions of ``order`` elements from the Materials Project API.

    Pages through the summary endpoint (``nelements`` = order) asking only for
    ``formula_pretty``; the key comes from ``api_key`` or ``$MP_API_KEY``.
    """
    import requests

    order = check_order(order)
    api_key = api_key or os.environ.get("MP_API_KEY")
    if not api_key:
        raise SpaceError("the Materials Project API needs a key: pass api_key or set MP_API_KEY")
    formulas: list[str] = []
    session = requests.Session()
    session.headers.update({"X-API-KEY": api_key, "accept": "application/json"})
    skip = 0
    while True:
        params = {
            "nelements_min": order,
            "nelements_max": order,
            "_fields": "formula_pretty",
            "_limit": per_page,
            "_skip": skip,
        }
        resp = session.get(endpoint, params=params, timeout=timeout)
        if resp.status_code != 200:
            raise SpaceError(f"Materials Project API: HTTP {resp.status_code}: {resp.text[:200]}")
        data = resp.json().get("data", [])
        formulas.extend(d["formula_pretty"] for d in data if d.get("formula_pretty"))
        log.info("Materials Project: %d entries so far", len(formulas))
        if len(data) < per_page:
            break
        skip += per_page
    return KnownList.from_formulas(
        formulas,
        source="Materials Project API",
        description=f"Materials Project API summary endpoint, {len(formulas)} entries with {order} elements",
        oxidation_states=oxidation_states,
    )


def known_in_space(index: SpaceIndex, known: KnownList) -> tuple[np.ndarray, np.ndarray, int]:
    """Known compositions of the index's order within its factor limit.

    Returns (element indices [m, k], factors [m, k], number outside the factor limit).
    """
    els, fac = known.of_order(index.order)
    inside = (fac <= index.max_factor).all(axis=1)
    return els[inside], fac[inside], int((~inside).sum())


def label_counts(
    order: int,
    known: KnownList | None = None,
    *,
    max_factor: int = 8,
    oxidation_states: str = DEFAULT_OXIDATION_STATES,
) -> dict:
    """Counts of the four categories for one order.

    Returns a dict with ``standard``, ``missing``, ``interesting``, ``unlikely``,
    ``total``, ``allowed``, ``known`` (known compositions in the space),
    ``known_outside`` (of this order but past ``max_factor``) and ``snapshot``.
    """
    order, max_factor = check_order(order), check_max_factor(max_factor)
    known = known if known is not None else read_known(oxidation_states=oxidation_states)
    known.require_order(order)
    index = build_index(order, max_factor, oxidation_states)
    els, fac, outside = known_in_space(index, known)
    verdict = index.is_allowed(els, fac) if len(els) else np.zeros(0, bool)
    standard = int(verdict.sum())
    interesting = int((~verdict).sum())
    total, allowed = index.total, index.allowed
    return {
        "order": order,
        "max_factor": max_factor,
        "oxidation_states": index.species.name,
        "standard": standard,
        "missing": allowed - standard,
        "interesting": interesting,
        "unlikely": total - allowed - interesting,
        "total": total,
        "allowed": allowed,
        "known": len(els),
        "known_outside": outside,
        "snapshot": known.description,
    }
