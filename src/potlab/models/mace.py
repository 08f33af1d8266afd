"""MACE (Batatia et al., NeurIPS 2022) assembled from mace-torch's own modules.

potlab builds a ``mace.modules.MACE`` (zero atomic energies, one head) and runs its blocks
on potlab's graph: node embedding, spherical harmonics, Bessel radial embedding, the
interaction and equivariant product blocks and the readouts. Forces and stress come from
:class:`~potlab.potential.Potential`, not from mace. Holding the mace model itself lets
later tools hand the identical weights to mace-torch's own calculator.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

from potlab.models.e3nn_import import import_mace_and_e3nn

import_mace_and_e3nn()  # e3nn's constants need a scoped torch.load workaround (see there)
import mace.modules
import numpy as np
import torch
from e3nn import o3
from pydantic import Field
from torch import nn

from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import SpeciesIndex
from potlab.models.registry import ModelConfig, register


@register("mace")
class MACE(nn.Module):
    """Equivariant MACE with higher-order (body-ordered) messages."""

    class Config(ModelConfig):
        num_channels: int = 32
        max_L: int = 1
        max_ell: int = 3
        correlation: int = 3
        num_interactions: int = 2
        num_bessel: int = 8
        num_polynomial_cutoff: int = 5
        radial_mlp: list[int] = Field(default_factory=lambda: [64, 64, 64])
        mlp_irreps: str = "16x0e"

    presets: ClassVar[dict[str, dict]] = {
        "seed000": {"num_channels": 128, "max_L": 1, "cutoff": 6.0},
        "tiny": {"num_channels": 8, "max_L": 1, "correlation": 2, "num_interactions": 2,
                 "radial_mlp": [16, 16], "mlp_irreps": "8x0e"},
    }

    def __init__(self, config: MACE.Config, elements: list[int], avg_num_neighbors: float = 10.0):
        super().__init__()
        self.config = config
        self.cutoff = config.cutoff
        self.species_index = SpeciesIndex(elements)
        self.num_elements = len(elements)
        hidden = " + ".join(
            f"{config.num_channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(config.max_L + 1)
        )
        block = mace.modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        with warnings.catch_warnings():  # e3nn's TorchScript code generation is noisy
            warnings.simplefilter("ignore")
            self.mace = self._build(config, elements, avg_num_neighbors, hidden, block)

    @staticmethod
    def _build(config, elements, avg_num_neighbors, hidden, block):
        return mace.modules.MACE(
            r_max=config.cutoff,
            num_bessel=config.num_bessel,
            num_polynomial_cutoff=config.num_polynomial_cutoff,
            max_ell=config.max_ell,
            interaction_cls=block,
            interaction_cls_first=block,
            num_interactions=config.num_interactions,
            num_elements=len(elements),
            hidden_irreps=o3.Irreps(hidden),
            MLP_irreps=o3.Irreps(config.mlp_irreps),
            atomic_energies=np.zeros(len(elements)),
            avg_num_neighbors=avg_num_neighbors,
            atomic_numbers=list(elements),
            correlation=config.correlation,
            gate=nn.functional.silu,
            radial_MLP=list(config.radial_mlp),
        )

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        m = self.mace
        vectors, lengths = edge_vectors(batch)
        node_attrs = nn.functional.one_hot(
            self.species_index(batch.species), self.num_elements
        ).to(vectors.dtype)  # [n_atoms, n_elements]
        heads = torch.zeros_like(batch.species)
        node_feats = m.node_embedding(node_attrs)
        edge_attrs = m.spherical_harmonics(vectors)  # [n_edges, (l_max+1)^2]
        edge_feats, cutoff = m.radial_embedding(
            lengths[:, None], node_attrs, batch.edge_index, m.atomic_numbers
        )
        feats = []
        for i, (interaction, product) in enumerate(zip(m.interactions, m.products)):
            node_feats, sc = interaction(
                node_attrs=node_attrs, node_feats=node_feats, edge_attrs=edge_attrs,
                edge_feats=edge_feats, edge_index=batch.edge_index, cutoff=cutoff,
                first_layer=(i == 0),
            )
            node_feats = product(node_feats=node_feats, sc=sc, node_attrs=node_attrs)
            feats.append(node_feats)
        energy = torch.zeros(batch.num_nodes, dtype=vectors.dtype, device=vectors.device)
        for i, readout in enumerate(m.readouts):
            energy = energy + readout(feats[i], heads)[:, 0]
        return energy  # [n_atoms]
