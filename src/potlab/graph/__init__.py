"""Neighbour graphs: ASE frames -> one batched graph of tensors (periodic images via vesin).

Conventions (shared with mace-torch): ``edge_index[0]`` is the sender ``i``,
``edge_index[1]`` the receiver ``j``; the edge vector is
``positions[j] - positions[i] + unit_shifts @ cell``, pointing from ``i`` to the image
of ``j``. Both directions of every pair are present (full list).
"""

from potlab.graph.batch import (
    GraphBatch,
    build_graph,
    collate,
    edge_vectors,
    neighbour_list,
    replicate,
)

__all__ = ["GraphBatch", "build_graph", "collate", "edge_vectors", "neighbour_list", "replicate"]
