"""Compositional embeddings: stoichiometry-weighted mean of element vectors (seed 001, eq. 2).

``V = (w V_A + x V_B + y V_C + z V_D) / (w + x + y + z)`` with element vectors from the
ElementEmbeddings package (all six used in the paper ship in its wheel, offline). As in
ElementEmbeddings' ``CompositionalEmbedding``, NaN entries of an element vector count
as 0. A composition with an element the embedding lacks is dropped and counted.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from potlab.space.species import SpaceError, Species

log = logging.getLogger(__name__)

#: The element embeddings of seed 001 (Figures 2-5), by ElementEmbeddings name.
EMBEDDINGS = ("magpie", "mat2vec", "megnet16", "oliynyk", "skipatom", "random_200")


@lru_cache(maxsize=32)
def _element_vectors(name: str) -> dict[str, np.ndarray]:
    try:
        from elementembeddings.core import Embedding
        from elementembeddings.utils.config import DEFAULT_ELEMENT_EMBEDDINGS
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "embeddings need ElementEmbeddings: pip install ElementEmbeddings"
        ) from exc
    if name not in DEFAULT_ELEMENT_EMBEDDINGS:
        raise SpaceError(
            f"unknown embedding {name!r}: choose one of {', '.join(sorted(DEFAULT_ELEMENT_EMBEDDINGS))}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emb = Embedding.load_data(name)
    return {k: np.asarray(v, dtype=np.float64) for k, v in emb.embeddings.items()}


def element_matrix(name: str, species: Species) -> tuple[np.ndarray, np.ndarray]:
    """Element vectors in species order.

    Returns (matrix [n_elements, dim] with NaN -> 0 and zero rows where missing,
    present [n_elements] bool).
    """
    vectors = _element_vectors(name)
    dim = len(next(iter(vectors.values())))
    matrix = np.zeros((species.n_elements, dim))
    present = np.zeros(species.n_elements, dtype=bool)
    for i, sym in enumerate(species.symbols):
        if sym in vectors:
            matrix[i] = np.nan_to_num(vectors[sym])
            present[i] = True
    return matrix, present


@dataclass
class EmbeddedCompositions:
    """Result of :func:`embed`.

    Attributes:
        name: embedding name.
        vectors: [m_kept, dim] compositional vectors.
        kept: [m] bool, True for compositions that were embedded.
        n_dropped: compositions dropped because an element lacks a vector.
        missing_elements: the element symbols that caused drops.
    """

    name: str
    vectors: np.ndarray
    kept: np.ndarray
    n_dropped: int
    missing_elements: tuple[str, ...]


def embed(
    name: str, species: Species, elements: np.ndarray, factors: np.ndarray
) -> EmbeddedCompositions:
    """Weighted-mean compositional embedding of compositions [m, k] (eq. 2)."""
    elements = np.atleast_2d(np.asarray(elements, dtype=np.int64))
    factors = np.atleast_2d(np.asarray(factors, dtype=np.float64))
    matrix, present = element_matrix(name, species)
    kept = present[elements].all(axis=1) if len(elements) else np.zeros(0, bool)
    weights = factors[kept] / factors[kept].sum(axis=1, keepdims=True)  # [m, k]
    vectors = np.einsum("mk,mkd->md", weights, matrix[elements[kept]])  # [m, dim]
    missing = sorted({species.symbols[e] for e in np.unique(elements[~kept]) if not present[e]})
    n_dropped = int((~kept).sum())
    if n_dropped:
        log.info(
            "embedding %s: dropped %d compositions (no vector for %s)",
            name,
            n_dropped,
            ", ".join(missing),
        )
    return EmbeddedCompositions(name, vectors, kept, n_dropped, tuple(missing))
