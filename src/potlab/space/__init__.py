"""Chemical space of inorganic compositions (seed 001): species, exact counts under the
SMACT filter, enumeration and sampling, known/unknown categories, compositional
embeddings and 2-D maps.

Verbs: :func:`count`, :func:`label_counts`, :func:`enumerate_allowed`, :func:`sample`,
:func:`read_known`, :func:`embed`, :func:`make_maps`. Heavy imports (pandas, pyarrow,
scikit-learn, umap, plotly) happen inside the functions that need them.
"""

from __future__ import annotations

from potlab.space.counting import build_index, count
from potlab.space.known import CATEGORIES, KnownList, label_counts, parse_formula, read_known
from potlab.space.species import OXIDATION_STATE_SETS, SpaceError, load_species
from potlab.space.stoichiometry import count_total

__all__ = [
    "CATEGORIES",
    "OXIDATION_STATE_SETS",
    "KnownList",
    "SpaceError",
    "build_index",
    "count",
    "count_total",
    "label_counts",
    "load_species",
    "parse_formula",
    "read_known",
]
