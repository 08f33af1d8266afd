"""Species of the chemical space: elements, Pauling electronegativities, oxidation states.

Data come from SMACT. The oxidation-state set is selectable by SMACT's names
(``"smact14"``: the 2014 set with 421 species over 103 elements behind seed 001's
numbers; ``"icsd16"``, ``"icsd24"`` (SMACT 4.x default), ``"pymatgen_sp"``, ``"wiki"``)
or by the path of a SMACT-format oxidation-state text file.

Elements are ordered by Pauling electronegativity (ties by atomic number); an element
without a Pauling electronegativity or without any oxidation state in the chosen set
can never pass the SMACT filter (``Species.filterable`` is False for it).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from potlab.errors import InputError, require_extra

log = logging.getLogger(__name__)

#: SMACT's named oxidation-state sets and the ``smact.Element`` attribute holding each.
OXIDATION_STATE_SETS: dict[str, str] = {
    "smact14": "oxidation_states_smact14",
    "icsd16": "oxidation_states_icsd16",
    "icsd24": "oxidation_states_icsd24",
    "pymatgen_sp": "oxidation_states_sp",
    "wiki": "oxidation_states_wiki",
}
DEFAULT_OXIDATION_STATES = "smact14"
MAX_ATOMIC_NUMBER = 103


class SpaceError(InputError):
    """Bad input to the chemical-space tools (a clear message names the culprit)."""


@dataclass(frozen=True, eq=False)
class Species:
    """Element table of one chemical space, sorted by Pauling electronegativity.

    Attributes (all of length ``n_elements``, in electronegativity order):
        symbols: element symbols.
        atomic_numbers: Z.
        eneg: Pauling electronegativity; ``inf`` where SMACT has none.
        oxidation_states: tuple of oxidation states (ints) per element.
        filterable: True where the element can pass the SMACT filter (has a Pauling
            electronegativity and at least one oxidation state).
        name: the oxidation-state set name (or file path) used.
    """

    symbols: tuple[str, ...]
    atomic_numbers: np.ndarray
    eneg: np.ndarray
    oxidation_states: tuple[tuple[int, ...], ...]
    filterable: np.ndarray
    name: str

    @property
    def n_elements(self) -> int:
        return len(self.symbols)

    @property
    def n_species(self) -> int:
        """Number of (element, oxidation state) species over all elements."""
        return sum(len(o) for o in self.oxidation_states)

    def index(self) -> dict[str, int]:
        """Symbol -> position in electronegativity order."""
        return {s: i for i, s in enumerate(self.symbols)}


def _load_states(symbols: list[str], oxidation_states: str) -> list[tuple[int, ...]]:
    from smact import Element

    if oxidation_states in OXIDATION_STATE_SETS:
        attr = OXIDATION_STATE_SETS[oxidation_states]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [tuple(sorted(getattr(Element(s), attr) or ())) for s in symbols]
    path = Path(oxidation_states)
    if path.is_file():
        from smact.data_loader import lookup_element_oxidation_states_custom

        table = lookup_element_oxidation_states_custom("all", str(path), copy=True)
        if not isinstance(table, dict):
            raise SpaceError(f"{path}: not a SMACT oxidation-state file")
        return [tuple(sorted(int(x) for x in (table.get(s) or ()))) for s in symbols]
    raise SpaceError(
        f"unknown oxidation-state set {oxidation_states!r}: choose one of "
        f"{', '.join(OXIDATION_STATE_SETS)} or give the path of a SMACT oxidation-state file"
    )


@lru_cache(maxsize=16)
def load_species(
    oxidation_states: str = DEFAULT_OXIDATION_STATES, max_atomic_number: int = MAX_ATOMIC_NUMBER
) -> Species:
    """Species of the first ``max_atomic_number`` elements with the chosen oxidation states.

    Raises:
        SpaceError: unknown set name and no such file.
        MissingExtra: SMACT is not installed (``pip install 'potlab[space]'``).
    """
    smact = require_extra("smact", "space", "potlab.space (chemical space)")
    Element, ordered_elements = smact.Element, smact.ordered_elements

    symbols = list(ordered_elements(1, max_atomic_number))
    states = _load_states(symbols, oxidation_states)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elements = [Element(s) for s in symbols]
    eneg = np.array([np.inf if e.pauling_eneg is None else float(e.pauling_eneg) for e in elements])
    z = np.array([e.number for e in elements], dtype=np.int64)
    order = np.lexsort((z, eneg))
    filterable = np.isfinite(eneg) & np.array([len(s) > 0 for s in states])
    sp = Species(
        symbols=tuple(symbols[i] for i in order),
        atomic_numbers=z[order],
        eneg=eneg[order],
        oxidation_states=tuple(states[i] for i in order),
        filterable=filterable[order],
        name=str(oxidation_states),
    )
    log.info(
        "species %s: %d elements, %d species, %d filterable elements",
        sp.name,
        sp.n_elements,
        sp.n_species,
        int(sp.filterable.sum()),
    )
    return sp
