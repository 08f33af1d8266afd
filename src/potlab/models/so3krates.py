"""SO3krates: a Euclidean transformer with invariant features and Euclidean variables.

Frank, Unke and Mueller, NeurIPS 2022 ("So3krates: equivariant attention for
interactions on arbitrary length-scales"); Frank, Unke, Mueller and Chmiela, Nat.
Commun. 15, 6539 (2024) ("A Euclidean transformer for fast and stable machine learned
force fields"); equations as numbered in seed 004.

Each atom carries invariant features f_i in R^F and one Euclidean variable (EV)
x_i in R^{(l_max+1)^2}, initialised from its neighbourhood (eq. 4):

    f_i = Emb(Z_i),   x_{i,lm} = 1/<N> sum_j f_cut(r_ij) Y_lm(r_ij / |r_ij|).

A Euclidean transformer block (eq. 8) is a self-attention block and an interaction block.
Attention coefficients (eq. 7) depend on f_i, f_j, r_ij and the per-degree invariant
contraction of the EVs, c_ij,l = sum_m x_{i,lm} x_{j,lm}:

    alpha^h_ij = <Q f_i, w(r_ij, c_ij) * K f_j>_h / sqrt(d)   (one coefficient per head h)
    alpha^l_ij likewise with its own Q_x, K_x, filter outputs (one coefficient per degree l)

and update f by m_ij = alpha_ij f_cut V f_j (eqs. 2, 5) and x by
m_ij^lm = alpha^l_ij f_cut Y_lm(r_ij) (eqs. 3, 6). The interaction block exchanges
information between f_i and x_i of one atom: an MLP of [f_i, sum_m x_{i,lm}^2] gives
Delta f_i and a per-degree scale b_{i,l}, x_{i,lm} <- x_{i,lm} (1 + b_{i,l}).
The energy is an MLP of the final invariant features, summed over atoms (eq. 9). No
Clebsch-Gordan products: the cost per layer is O(n <N> (l_max^2 + F)).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import CosineCutoff, GaussianBasis, SpeciesIndex
from potlab.models.registry import ModelConfig, register


def spherical_harmonics(degrees: list[int], vectors: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics Y_lm(r/|r|) of ``degrees`` (e3nn's order and "norm"
    normalisation, sum_m Y_lm^2 = 1): [n, 3] -> [n, sum(2l+1)]."""
    from potlab.models.e3nn_import import import_mace_and_e3nn

    import_mace_and_e3nn()  # imported once; e3nn's constants need the scoped workaround
    from e3nn import o3

    return o3.spherical_harmonics(degrees, vectors, normalize=True, normalization="norm")


def degree_contraction(
    a: torch.Tensor, b: torch.Tensor, degree_onehot: torch.Tensor
) -> torch.Tensor:
    """Per-degree invariant sum_m a_lm b_lm: [n, (l_max+1)^2] x2 -> [n, l_max+1]."""
    return (a * b) @ degree_onehot.to(a.dtype)


class EuclideanAttention(nn.Module):
    """Self-attention block (eqs. 2-3, 5-7): multi-head attention on f, one head per
    degree on x; filters from the radial basis and the EV contraction c_ij."""

    def __init__(self, features: int, num_heads: int, num_rbf: int, num_degrees: int):
        super().__init__()
        if features % num_heads:
            raise ValueError(f"num_features={features} is not divisible by num_heads={num_heads}")
        self.num_heads, self.num_degrees = num_heads, num_degrees
        self.head_dim = features // num_heads
        self.norm = nn.LayerNorm(features)
        ev = num_degrees * self.head_dim
        self.q = nn.Linear(features, features + ev, bias=False)  # [Q f ; Q_x f]
        self.k = nn.Linear(features, features + ev, bias=False)  # [K f ; K_x f]
        self.v = nn.Linear(features, features, bias=False)
        # filter w(r_ij, c_ij) for both attentions; a narrow hidden layer (F/4, as in
        # So3krates' radial and spherical filters) keeps the per-edge cost O(F)
        hidden = max(features // 4, 4)
        self.filter = nn.Sequential(nn.Linear(num_rbf + num_degrees, hidden), nn.SiLU(),
                                    nn.Linear(hidden, features + ev))
        self.out = nn.Linear(features, features)

    def coefficients(self, f, rbf, contraction, edge_index):
        """alpha_ij [n_edges, num_heads] and alpha^l_ij [n_edges, num_degrees] (eq. 7).

        f [n_atoms, F] (already normalised), rbf [n_edges, n_rbf], contraction
        [n_edges, num_degrees]; centre i = edge_index[0], neighbour j = edge_index[1].
        """
        i, j = edge_index[0], edge_index[1]
        geom = torch.cat([rbf, contraction], dim=1)  # [E, n_rbf + n_deg]
        prod = self.q(f)[i] * self.filter(geom) * self.k(f)[j]  # [E, F + n_deg * d]
        n_f = self.num_heads * self.head_dim
        alpha = prod[:, :n_f].unflatten(1, (self.num_heads, self.head_dim))  # [E, H, d]
        alpha_x = prod[:, n_f:].unflatten(1, (self.num_degrees, self.head_dim))  # [E, n_deg, d]
        scale = 1.0 / math.sqrt(self.head_dim)
        return alpha.sum(-1) * scale, alpha_x.sum(-1) * scale

    def forward(self, f, x, rbf, fcut, sh, degree_onehot, edge_index, inv_neighbors: float):
        # f [n_atoms, F], x [n_atoms, (l+1)^2], rbf [E, n_rbf], fcut [E], sh [E, (l+1)^2]
        i, j = edge_index[0], edge_index[1]
        h = self.norm(f)
        contraction = degree_contraction(x[i], x[j], degree_onehot)  # [E, n_deg]
        alpha, alpha_x = self.coefficients(h, rbf, contraction, edge_index)
        alpha = alpha * fcut[:, None]  # [E, H]
        alpha_x = alpha_x * fcut[:, None]  # [E, n_deg]
        v = self.v(h)[j].view(-1, self.num_heads, self.head_dim)  # [E, H, d]
        msg = (alpha[:, :, None] * v).flatten(1)  # [E, F]            eq. 2
        df = torch.zeros_like(h).index_add(0, i, msg) * inv_neighbors  # eq. 5
        msg_x = (alpha_x @ degree_onehot.T.to(sh.dtype)) * sh  # [E, (l+1)^2]  eq. 3
        dx = torch.zeros_like(x).index_add(0, i, msg_x) * inv_neighbors  # eq. 6
        return f + self.out(df), x + dx


class FeatureEVInteraction(nn.Module):
    """Interaction block: per atom, f_i and the invariants |x_{i,l}|^2 exchange information;
    Delta f_i and a per-degree scale b_{i,l} of x_{i,l} (equivariant)."""

    def __init__(self, features: int, num_degrees: int):
        super().__init__()
        self.features = features
        self.norm = nn.LayerNorm(features)
        self.mlp = nn.Sequential(nn.Linear(features + num_degrees, features), nn.SiLU(),
                                 nn.Linear(features, features + num_degrees))

    def forward(self, f, x, degree_onehot):
        inv = degree_contraction(x, x, degree_onehot)  # [n_atoms, n_deg]
        out = self.mlp(torch.cat([self.norm(f), inv], dim=1))
        df, b = out[:, : self.features], out[:, self.features :]  # [n, F], [n, n_deg]
        return f + df, x * (1.0 + b @ degree_onehot.T.to(x.dtype))


@register("so3krates")
class SO3krates(nn.Module):
    """SO3krates Euclidean transformer: attention on features and spherical-harmonic EVs."""

    class Config(ModelConfig):
        cutoff: float = Field(5.0, gt=0)  # seed 004's default r_cut (A)
        num_features: int = Field(64, ge=1)  # F (seed 004 used 132 on GPU)
        num_heads: int = Field(4, ge=1)  # attention heads on the features
        num_layers: int = Field(2, ge=1)  # Euclidean transformer blocks T
        l_max: int = Field(3, ge=0)  # EV degrees 0..l_max
        num_rbf: int = Field(32, ge=1)  # Gaussian radial basis functions

    presets: ClassVar[dict[str, dict]] = {
        "seed000": {"num_features": 128, "num_heads": 4, "num_layers": 3, "cutoff": 6.0},
        "tiny": {"num_features": 16, "num_heads": 2, "num_layers": 2, "num_rbf": 8},
    }

    def __init__(
        self, config: SO3krates.Config, elements: list[int], avg_num_neighbors: float = 10.0
    ):
        super().__init__()
        self.config = config
        self.cutoff = config.cutoff
        self.inv_neighbors = 1.0 / max(float(avg_num_neighbors), 1.0)
        F, L = config.num_features, config.l_max
        self.species_index = SpeciesIndex(elements)
        self.embedding = nn.Embedding(len(elements), F)
        self.rbf = GaussianBasis(config.cutoff, config.num_rbf)
        self.fcut = CosineCutoff(config.cutoff)
        self.degrees = list(range(L + 1))
        degree_of = torch.cat([torch.full((2 * l + 1,), l) for l in self.degrees])
        self.register_buffer("degree_onehot", nn.functional.one_hot(degree_of, L + 1).float())
        self.blocks = nn.ModuleList(
            nn.ModuleList([EuclideanAttention(F, config.num_heads, config.num_rbf, L + 1),
                           FeatureEVInteraction(F, L + 1)])
            for _ in range(config.num_layers)
        )
        self.readout = nn.Sequential(nn.LayerNorm(F), nn.Linear(F, F // 2 or 1), nn.SiLU(),
                                     nn.Linear(F // 2 or 1, 1))

    def representation(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Final invariant features f [n_atoms, F] and Euclidean variables
        x [n_atoms, (l_max+1)^2] (e3nn's real spherical-harmonic order, norm-normalised)."""
        vec, r = edge_vectors(batch)  # [E, 3] from centre i = sender to neighbour j
        i = batch.edge_index[0]
        onehot = self.degree_onehot
        sh = spherical_harmonics(self.degrees, vec)  # [E, (L+1)^2]
        fcut = self.fcut(r)  # [E]
        rbf = self.rbf(r)  # [E, n_rbf]
        f = self.embedding(self.species_index(batch.species)).to(vec.dtype)  # [n_atoms, F]
        x = vec.new_zeros(batch.num_nodes, sh.shape[1]).index_add(0, i, fcut[:, None] * sh)
        x = x * self.inv_neighbors  # eq. 4
        for attention, interaction in self.blocks:
            f, x = attention(f, x, rbf, fcut, sh, onehot, batch.edge_index, self.inv_neighbors)
            f, x = interaction(f, x, onehot)
        return f, x

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        f, _ = self.representation(batch)
        return self.readout(f).squeeze(-1)  # [n_atoms], eq. 9 after the sum
