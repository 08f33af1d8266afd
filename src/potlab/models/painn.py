"""PaiNN (Schuett, Unke, Gastegger, ICML 2021, arXiv:2102.03150): polarizable atom
interaction neural network with scalar and equivariant vector features.

Each atom carries scalars s_i [F] and vectors v_i [3, F]. A message block (eqs. 7-8)
lets neighbours j contribute, through filters W(r_ij) = Dense(rbf(r_ij)) f_cut(r_ij),

    ds_i = sum_j phi_s(s_j) o W_s(r_ij)
    dv_i = sum_j v_j o phi_vv(s_j) o W_vv(r_ij) + phi_vs(s_j) o W_vs(r_ij) r_ij / |r_ij|

and an update block (eqs. 9-10) mixes scalars and vectors within an atom,

    dv_i = a_vv(s_i, |V v_i|) o U v_i
    ds_i = a_sv(s_i, |V v_i|) o <U v_i, V v_i> + a_ss(s_i, |V v_i|).

The per-atom energy is an MLP of the final scalars. Radial basis: sin(n pi r / r_c) / r
(``BesselBasis``) with the cosine cutoff, as in the paper.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import BesselBasis, CosineCutoff, SpeciesIndex
from potlab.models.registry import ModelConfig, register

# |V v| uses sqrt(|V v|^2 + eps): finite first and second derivatives when an atom's
# vectors vanish (isolated atoms, the first layer of symmetric sites).
_NORM_EPS = 1e-8


class PaiNNMessage(nn.Module):
    """Message block (PaiNN eqs. 7-8): continuous filters on scalars, vectors and directions."""

    def __init__(self, features: int, num_rbf: int):
        super().__init__()
        self.features = features
        self.phi = nn.Sequential(
            nn.Linear(features, features), nn.SiLU(), nn.Linear(features, 3 * features)
        )
        self.filter = nn.Linear(num_rbf, 3 * features)

    def forward(self, s, v, rbf, fcut, unit, edge_index):
        # s [n_atoms, F], v [n_atoms, 3, F], rbf [n_edges, n_rbf], fcut [n_edges],
        # unit [n_edges, 3] (sender -> receiver)
        sender, receiver = edge_index[0], edge_index[1]
        w = self.filter(rbf) * fcut[:, None]  # [n_edges, 3F]
        x = self.phi(s)[sender] * w  # [n_edges, 3F]
        x_vv, x_vs, x_ss = torch.split(x, self.features, dim=-1)  # 3 x [n_edges, F]
        dv = v[sender] * x_vv[:, None, :] + x_vs[:, None, :] * unit[:, :, None]  # [n_edges, 3, F]
        ds = torch.zeros_like(s).index_add_(0, receiver, x_ss)  # [n_atoms, F]
        dv = torch.zeros_like(v).index_add_(0, receiver, dv)  # [n_atoms, 3, F]
        return s + ds, v + dv


class PaiNNUpdate(nn.Module):
    """Update block (PaiNN eqs. 9-10): atom-wise coupling of scalars and vector norms."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        self.U = nn.Linear(features, features, bias=False)
        self.V = nn.Linear(features, features, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * features, features), nn.SiLU(), nn.Linear(features, 3 * features)
        )

    def forward(self, s, v):
        # s [n_atoms, F], v [n_atoms, 3, F]
        uv, vv = self.U(v), self.V(v)  # [n_atoms, 3, F] (linear over features only)
        norm = torch.sqrt((vv * vv).sum(dim=1) + _NORM_EPS)  # [n_atoms, F]
        a = self.mlp(torch.cat([s, norm], dim=-1))  # [n_atoms, 3F]
        a_vv, a_sv, a_ss = torch.split(a, self.features, dim=-1)  # 3 x [n_atoms, F]
        dv = a_vv[:, None, :] * uv  # [n_atoms, 3, F]
        ds = a_sv * (uv * vv).sum(dim=1) + a_ss  # [n_atoms, F]
        return s + ds, v + dv


@register("painn")
class PaiNN(nn.Module):
    """Equivariant PaiNN: scalar and vector features, energy from scalars."""

    class Config(ModelConfig):
        num_features: int = 64
        """F: width of the scalar features and of each Cartesian vector component."""
        num_interactions: int = 3
        """Message + update blocks (the paper uses 3)."""
        num_rbf: int = 20
        """sin(n pi r / r_c) / r radial functions (the paper uses 20)."""

    presets: ClassVar[dict[str, dict]] = {
        "seed000": {"num_features": 128, "num_interactions": 3, "num_rbf": 20, "cutoff": 6.0},
        "tiny": {"num_features": 16, "num_interactions": 2, "num_rbf": 8},
    }

    def __init__(
        self, config: PaiNN.Config, elements: list[int], avg_num_neighbors: float = 10.0
    ):
        super().__init__()
        self.config = config
        self.cutoff = config.cutoff
        F = config.num_features
        self.species_index = SpeciesIndex(elements)
        self.embedding = nn.Embedding(len(elements), F)
        self.rbf = BesselBasis(config.cutoff, config.num_rbf)
        self.fcut = CosineCutoff(config.cutoff)
        self.messages = nn.ModuleList(
            PaiNNMessage(F, config.num_rbf) for _ in range(config.num_interactions)
        )
        self.updates = nn.ModuleList(PaiNNUpdate(F) for _ in range(config.num_interactions))
        self.readout = nn.Sequential(nn.Linear(F, F // 2), nn.SiLU(), nn.Linear(F // 2, 1))

    def features(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Final scalar [n_atoms, F] and vector [n_atoms, 3, F] features."""
        vec, r = edge_vectors(batch)  # [n_edges, 3], [n_edges]
        unit = vec / r[:, None]  # [n_edges, 3]
        rbf, fc = self.rbf(r), self.fcut(r)  # [n_edges, n_rbf], [n_edges]
        s = self.embedding(self.species_index(batch.species)).to(r.dtype)  # [n_atoms, F]
        v = s.new_zeros(s.shape[0], 3, s.shape[1])  # [n_atoms, 3, F]
        for message, update in zip(self.messages, self.updates):
            s, v = message(s, v, rbf, fc, unit, batch.edge_index)
            s, v = update(s, v)
        return s, v

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        s, _ = self.features(batch)
        return self.readout(s).squeeze(-1)  # [n_atoms]
