"""SchNet (Schuett et al., J. Chem. Phys. 148, 241722 (2018)): continuous-filter convolutions.

x_i <- x_i + v(sum_j x_j W(r_ij)),  W = Dense(ssp(Dense(rbf(r_ij)))) * f_cut(r_ij)
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import CosineCutoff, GaussianBasis, SpeciesIndex, shifted_softplus
from potlab.models.registry import ModelConfig, register


class SSP(nn.Module):
    def forward(self, x):
        return shifted_softplus(x)


class CFConv(nn.Module):
    """Continuous-filter convolution with atom-wise in/out layers (one interaction)."""

    def __init__(self, features: int, filters: int, num_rbf: int):
        super().__init__()
        self.filter_net = nn.Sequential(nn.Linear(num_rbf, filters), SSP(), nn.Linear(filters, filters))
        self.in2f = nn.Linear(features, filters, bias=False)
        self.f2out = nn.Sequential(nn.Linear(filters, features), SSP(), nn.Linear(features, features))

    def forward(self, x, rbf, fcut, edge_index):
        # x [n_atoms, F], rbf [n_edges, n_rbf], fcut [n_edges]
        w = self.filter_net(rbf) * fcut[:, None]  # [n_edges, filters]
        h = self.in2f(x)
        msg = h[edge_index[0]] * w  # sender -> receiver
        agg = torch.zeros_like(h).index_add_(0, edge_index[1], msg)  # [n_atoms, filters]
        return self.f2out(agg)


@register("schnet")
class SchNet(nn.Module):
    """Invariant SchNet; per-atom energies from the final features."""

    class Config(ModelConfig):
        num_features: int = 64
        num_filters: int = 64
        num_interactions: int = 3
        num_rbf: int = 32

    presets: ClassVar[dict[str, dict]] = {
        "seed000": {"num_features": 128, "num_filters": 128, "num_interactions": 3,
                    "num_rbf": 50, "cutoff": 6.0},
        "tiny": {"num_features": 16, "num_filters": 16, "num_interactions": 2, "num_rbf": 12},
    }

    def __init__(self, config: SchNet.Config, elements: list[int], avg_num_neighbors: float = 10.0):
        super().__init__()
        self.config = config
        self.cutoff = config.cutoff
        self.species_index = SpeciesIndex(elements)
        self.embedding = nn.Embedding(len(elements), config.num_features)
        self.rbf = GaussianBasis(config.cutoff, config.num_rbf)
        self.fcut = CosineCutoff(config.cutoff)
        self.interactions = nn.ModuleList(
            CFConv(config.num_features, config.num_filters, config.num_rbf)
            for _ in range(config.num_interactions)
        )
        self.readout = nn.Sequential(
            nn.Linear(config.num_features, config.num_features // 2), SSP(),
            nn.Linear(config.num_features // 2, 1),
        )

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        _, r = edge_vectors(batch)  # [n_edges]
        x = self.embedding(self.species_index(batch.species)).to(r.dtype)  # [n_atoms, F]
        rbf, fc = self.rbf(r), self.fcut(r)
        for block in self.interactions:
            x = x + block(x, rbf, fc, batch.edge_index)
        return self.readout(x).squeeze(-1)  # [n_atoms]
