"""DimeNet++ (Gasteiger, Giri, Margraf, Guennemann, arXiv:2011.14115; DimeNet: Gasteiger,
Gross, Guennemann, ICLR 2020): directional message passing over triplets k -> j -> i.

Messages m_ji live on edges. Each interaction updates m_ji from the messages m_kj of the
edges into j, weighted by a 2D spherical Fourier-Bessel basis of (d_kj, angle_kji)
(DimeNet eq. 10),

    a_SBF(d, a)_ln = sqrt(2) / |j_{l+1}(z_ln)| j_l(z_ln d / r_c) u(d) Y_l^0(a),

with z_ln the n-th zero of the spherical Bessel function j_l and u the polynomial
envelope. The "++" changes: the triplet interaction runs in a small embedding (down
projection before, up projection after: ``int_emb_size``), the basis enters through
two-layer bottlenecks of width ``basis_emb_size``, and output blocks lift to a wider
``out_emb_size`` before their MLP. Output blocks scatter rbf-weighted messages to atoms
and their sum is the per-atom energy.

Triplets come from potlab's edge list in plain torch (:func:`triplets`), in O(n_edges x
neighbours). Edge convention: potlab's edge e = (sender -> receiver); DimeNet's m_ji is the
edge j -> i (j the sender), so an atom's output sums the messages it receives.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import BesselBasis, PolynomialEnvelope, SpeciesIndex
from potlab.models.registry import ModelConfig, register


# ---- triplets -----------------------------------------------------------------------
def triplets(edge_index: torch.Tensor, shifts: torch.Tensor, num_nodes: int):
    """Triplets k -> j -> i of a full neighbour list, as edge pairs (idx_kj, idx_ji).

    For each edge e_ji = (j -> i), every edge e_kj into j is paired with it except the
    exact reverse of e_ji: same atoms (k == i) and opposite cell shift (``shifts``, the
    Cartesian shifts: S @ cell negates exactly when S does). An edge from another
    periodic image of i into j is kept. Returns ``idx_kj, idx_ji`` [n_triplets] (int64).
    Cost is O(sum over edges of the in-degree of their sender).
    """
    sender, receiver = edge_index[0], edge_index[1]
    n_edges = sender.shape[0]
    order = torch.argsort(receiver, stable=True)  # edges grouped by receiver
    indeg = torch.bincount(receiver, minlength=num_nodes)  # [n_atoms]
    start = torch.cumsum(indeg, 0) - indeg  # [n_atoms] first slot of each receiver in order
    per_edge = indeg[sender]  # [n_edges] candidate e_kj for each e_ji
    idx_ji = torch.repeat_interleave(torch.arange(n_edges, device=sender.device), per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge  # [n_edges]
    local = torch.arange(idx_ji.shape[0], device=sender.device) - first[idx_ji]  # [n_cand]
    idx_kj = order[start[sender[idx_ji]] + local]  # [n_cand], receiver[idx_kj] == sender[idx_ji]
    reverse = (sender[idx_kj] == receiver[idx_ji]) & (
        shifts[idx_kj].detach() == -shifts[idx_ji].detach()
    ).all(dim=-1)
    keep = ~reverse
    return idx_kj[keep], idx_ji[keep]


# ---- spherical Fourier-Bessel basis ---------------------------------------------------
def spherical_bessel(x: torch.Tensor, l_max: int) -> list[torch.Tensor]:
    """j_0 .. j_{l_max} at ``x`` > 0 by upward recurrence; works on tensors and arrays."""
    sin, cos = (torch.sin, torch.cos) if isinstance(x, torch.Tensor) else (np.sin, np.cos)
    out = [sin(x) / x]
    if l_max >= 1:
        out.append(sin(x) / x**2 - cos(x) / x)
    for l in range(1, l_max):
        out.append((2 * l + 1) / x * out[l] - out[l - 1])
    return out


def spherical_bessel_zeros(num_spherical: int, num_radial: int) -> np.ndarray:
    """z_ln, the first ``num_radial`` positive zeros of j_l for l < num_spherical
    [num_spherical, num_radial], by bisection between the (interlacing) zeros of j_{l-1}."""
    n_total = num_radial + num_spherical
    zeros = [np.pi * np.arange(1, n_total + 1, dtype=np.float64)]  # zeros of j_0
    for l in range(1, num_spherical):
        prev = zeros[-1]

        def f(x, l=l):
            return spherical_bessel(np.asarray(x, dtype=np.float64), l)[l]

        lo, hi = prev[:-1].copy(), prev[1:].copy()
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            same = np.sign(f(mid)) == np.sign(f(lo))
            lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
        zeros.append(0.5 * (lo + hi))
    return np.stack([z[:num_radial] for z in zeros])


def legendre(x: torch.Tensor, l_max: int) -> torch.Tensor:
    """P_0 .. P_{l_max}(x) [..., l_max + 1] by Bonnet's recurrence (polynomial in cos, so
    smooth at collinear triplets, unlike an arccos)."""
    out = [torch.ones_like(x), x]
    for l in range(1, l_max):
        out.append(((2 * l + 1) * x * out[l] - l * out[l - 1]) / (l + 1))
    return torch.stack(out[: l_max + 1], dim=-1)


class SphericalBasis(nn.Module):
    """2D spherical Fourier-Bessel basis a_SBF(d_kj, angle_kji) (DimeNet eq. 10) with the
    envelope; Y_l^0 = sqrt((2l+1)/4pi) P_l(cos angle)."""

    def __init__(self, cutoff: float, num_spherical: int, num_radial: int, envelope_p: int):
        super().__init__()
        self.cutoff = float(cutoff)
        self.num_spherical = num_spherical
        z = spherical_bessel_zeros(num_spherical, num_radial)  # [L, R]
        jl1 = np.stack([spherical_bessel(z[l], l + 1)[l + 1] for l in range(num_spherical)])
        norm = np.sqrt(2.0) / np.abs(jl1)  # [L, R] orthonormal on [0, 1]
        ylm = np.sqrt((2 * np.arange(num_spherical) + 1) / (4 * np.pi))  # [L]
        dt = torch.get_default_dtype()
        self.register_buffer("zeros", torch.tensor(z, dtype=dt))
        self.register_buffer("norm", torch.tensor(norm * ylm[:, None], dtype=dt))
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)

    def forward(self, r, cos_kji, idx_kj):
        # r [n_edges] (each edge's length, later taken as d_kj), cos_kji [n_triplets],
        # idx_kj [n_triplets] -> [n_triplets, L * R]
        x = (r / self.cutoff)[:, None, None] * self.zeros.to(r.dtype)  # [n_edges, L, R]
        jl = torch.stack(
            [spherical_bessel(x[:, l], l)[l] for l in range(self.num_spherical)],
            dim=1,
        )  # [n_edges, L, R]
        radial = jl * self.norm.to(r.dtype) * self.envelope(r)[:, None, None]
        angular = legendre(cos_kji, self.num_spherical - 1)  # [n_triplets, L]
        radial = radial.index_select(0, idx_kj)  # [n_triplets, L, R]
        return (radial * angular[:, :, None]).flatten(1)  # [n_triplets, L * R]


# ---- blocks --------------------------------------------------------------------------
def glorot_orthogonal_(weight: torch.Tensor, scale: float = 2.0) -> None:
    """DimeNet's initialiser: an orthogonal matrix rescaled to variance
    scale / (fan_in + fan_out). Keeps the long products of the triplet path O(1) at init."""
    with torch.no_grad():
        nn.init.orthogonal_(weight)
        weight.mul_(math.sqrt(scale / ((weight.shape[0] + weight.shape[1]) * float(weight.var()))))


class ResidualLayer(nn.Module):
    """x + act(W2 act(W1 x)) (DimeNet residual block)."""

    def __init__(self, width: int):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(width, width), nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, x):
        return x + self.act(self.lin2(self.act(self.lin1(x))))


class EmbeddingBlock(nn.Module):
    """Initial messages m_ji = act(W [h_i || h_j || act(W_rbf e_RBF(d_ji))])."""

    def __init__(self, num_elements: int, hidden: int, num_radial: int):
        super().__init__()
        self.embedding = nn.Embedding(num_elements, hidden)
        with torch.no_grad():  # DimeNet's uniform(-sqrt 3, sqrt 3) atom embeddings
            self.embedding.weight.uniform_(-math.sqrt(3), math.sqrt(3))
        self.lin_rbf = nn.Linear(num_radial, hidden)
        self.lin = nn.Linear(3 * hidden, hidden)
        self.act = nn.SiLU()

    def forward(self, species_idx, rbf, edge_index):
        # species_idx [n_atoms], rbf [n_edges, R] -> [n_edges, H]
        h = self.embedding(species_idx).to(rbf.dtype)  # [n_atoms, H]
        e = self.act(self.lin_rbf(rbf))  # [n_edges, H]
        j, i = edge_index[0], edge_index[1]
        return self.act(self.lin(torch.cat([h[i], h[j], e], dim=-1)))  # [n_edges, H]


class InteractionPPBlock(nn.Module):
    """DimeNet++ interaction: triplet message passing in a down-projected space."""

    def __init__(self, hidden: int, int_emb: int, basis_emb: int, num_spherical: int,
                 num_radial: int, num_before_skip: int, num_after_skip: int):
        super().__init__()
        self.act = nn.SiLU()
        self.lin_rbf1 = nn.Linear(num_radial, basis_emb, bias=False)
        self.lin_rbf2 = nn.Linear(basis_emb, hidden, bias=False)
        self.lin_sbf1 = nn.Linear(num_spherical * num_radial, basis_emb, bias=False)
        self.lin_sbf2 = nn.Linear(basis_emb, int_emb, bias=False)
        self.lin_kj = nn.Linear(hidden, hidden)
        self.lin_ji = nn.Linear(hidden, hidden)
        self.lin_down = nn.Linear(hidden, int_emb, bias=False)
        self.lin_up = nn.Linear(int_emb, hidden, bias=False)
        self.before_skip = nn.Sequential(*(ResidualLayer(hidden) for _ in range(num_before_skip)))
        self.lin = nn.Linear(hidden, hidden)
        self.after_skip = nn.Sequential(*(ResidualLayer(hidden) for _ in range(num_after_skip)))

    def forward(self, m, rbf, sbf, idx_kj, idx_ji):
        # m [n_edges, H], rbf [n_edges, R], sbf [n_triplets, L*R]
        x_ji = self.act(self.lin_ji(m))  # [n_edges, H]
        x_kj = self.act(self.lin_kj(m)) * self.lin_rbf2(self.lin_rbf1(rbf))  # [n_edges, H]
        x_kj = self.act(self.lin_down(x_kj))  # [n_edges, I]
        t = x_kj.index_select(0, idx_kj) * self.lin_sbf2(self.lin_sbf1(sbf))  # [n_triplets, I]
        agg = x_kj.new_zeros(x_kj.shape).index_add_(0, idx_ji, t)  # [n_edges, I]
        h = x_ji + self.act(self.lin_up(agg))  # [n_edges, H]
        h = self.before_skip(h)
        h = self.act(self.lin(h)) + m
        return self.after_skip(h)  # [n_edges, H]


class OutputPPBlock(nn.Module):
    """DimeNet++ output: sum_j W_rbf(e_RBF(d_ji)) o m_ji into atom i, up-projection to
    ``out_emb``, MLP, one energy per atom."""

    def __init__(self, hidden: int, out_emb: int, num_radial: int, num_layers: int):
        super().__init__()
        self.lin_rbf = nn.Linear(num_radial, hidden, bias=False)
        self.lin_up = nn.Linear(hidden, out_emb, bias=False)
        layers = []
        for _ in range(num_layers):
            layers += [nn.Linear(out_emb, out_emb), nn.SiLU()]
        self.mlp = nn.Sequential(*layers)
        self.lin = nn.Linear(out_emb, 1, bias=False)

    def forward(self, m, rbf, receiver, num_nodes: int):
        # m [n_edges, H], rbf [n_edges, R] -> [n_atoms]
        x = self.lin_rbf(rbf) * m  # [n_edges, H]
        atoms = x.new_zeros(num_nodes, x.shape[1]).index_add_(0, receiver, x)  # [n_atoms, H]
        return self.lin(self.mlp(self.lin_up(atoms))).squeeze(-1)  # [n_atoms]


@register("dimenetpp")
class DimeNetPP(nn.Module):
    """Invariant DimeNet++: directional messages over triplets with angular basis."""

    class Config(ModelConfig):
        hidden_channels: int = 64
        """H: width of the edge messages."""
        out_emb_size: int = 128
        """Width of the output blocks' MLP after the up-projection."""
        int_emb_size: int = 32
        """Width of the triplet interaction (down/up projection)."""
        basis_emb_size: int = 8
        """Bottleneck of the radial and spherical basis transforms."""
        num_blocks: int = 3
        """Interaction blocks (the paper uses 4); there is one more output block."""
        num_spherical: int = 7
        """Angular degrees l = 0..num_spherical-1 of the spherical basis."""
        num_radial: int = 6
        """Radial (Bessel) functions, of the edge basis and per degree of the spherical one."""
        envelope_exponent: int = 5
        """DimeNet's envelope exponent (5); ``PolynomialEnvelope`` gets p = exponent + 1
        because its 1/d factor is already in the Bessel basis."""
        num_before_skip: int = 1
        num_after_skip: int = 2
        num_output_layers: int = 3

    presets: ClassVar[dict[str, dict]] = {
        # the paper's widths with 3 blocks (OCP's DimeNet++ at 128 features) and a 6 A cutoff:
        # 1.48 M parameters for LGPS, seed 000's Table 1 has 1.49 M (OCP embeds 95 elements)
        "seed000": {"hidden_channels": 128, "out_emb_size": 256, "int_emb_size": 64,
                    "basis_emb_size": 8, "num_blocks": 3, "num_spherical": 7, "num_radial": 6,
                    "cutoff": 6.0},
        "tiny": {"hidden_channels": 16, "out_emb_size": 16, "int_emb_size": 8,
                 "basis_emb_size": 4, "num_blocks": 2, "num_spherical": 3, "num_radial": 4,
                 "num_after_skip": 1, "num_output_layers": 1},
    }

    def __init__(
        self, config: DimeNetPP.Config, elements: list[int], avg_num_neighbors: float = 10.0
    ):
        super().__init__()
        self.config = config
        self.cutoff = config.cutoff
        c = config
        self.species_index = SpeciesIndex(elements)
        self.rbf = BesselBasis(c.cutoff, c.num_radial, trainable=True)
        self.envelope = PolynomialEnvelope(c.cutoff, c.envelope_exponent + 1)
        # DimeNet's radial basis is sin(n pi d) / d in d = r / r_c (O(1) values); BesselBasis
        # is sqrt(2 / r_c) sin(n pi r / r_c) / r, so multiply by r_c^1.5 / sqrt(2)
        self.rbf_scale = c.cutoff**1.5 / math.sqrt(2.0)
        self.sbf = SphericalBasis(c.cutoff, c.num_spherical, c.num_radial, c.envelope_exponent + 1)
        self.embedding = EmbeddingBlock(len(elements), c.hidden_channels, c.num_radial)
        self.interactions = nn.ModuleList(
            InteractionPPBlock(c.hidden_channels, c.int_emb_size, c.basis_emb_size,
                               c.num_spherical, c.num_radial, c.num_before_skip, c.num_after_skip)
            for _ in range(c.num_blocks)
        )
        self.outputs = nn.ModuleList(
            OutputPPBlock(c.hidden_channels, c.out_emb_size, c.num_radial, c.num_output_layers)
            for _ in range(c.num_blocks + 1)
        )
        for module in (self.embedding, self.interactions, self.outputs):
            for layer in module.modules():
                if isinstance(layer, nn.Linear):
                    glorot_orthogonal_(layer.weight)
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)
        for output in self.outputs:  # torch's smaller default on the last projection keeps
            output.lin.reset_parameters()  # untrained per-atom energies O(1) (DimeNet: zeros)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        vec, r = edge_vectors(batch)  # [n_edges, 3], [n_edges]
        idx_kj, idx_ji = triplets(batch.edge_index, batch.shifts, batch.num_nodes)
        # angle at j between j -> i (vec[ji]) and j -> k (-vec[kj])
        v_ji, v_jk = vec.index_select(0, idx_ji), -vec.index_select(0, idx_kj)  # [n_triplets, 3]
        r_ji, r_kj = r.index_select(0, idx_ji), r.index_select(0, idx_kj)  # [n_triplets]
        cos_kji = (v_ji * v_jk).sum(-1) / (r_ji * r_kj)  # [n_triplets]
        rbf = self.rbf(r) * (self.rbf_scale * self.envelope(r))[:, None]  # [n_edges, R]
        sbf = self.sbf(r, cos_kji, idx_kj)  # [n_triplets, L*R]
        receiver = batch.edge_index[1]
        m = self.embedding(self.species_index(batch.species), rbf, batch.edge_index)  # [n_edges, H]
        energy = self.outputs[0](m, rbf, receiver, batch.num_nodes)  # [n_atoms]
        for interaction, output in zip(self.interactions, self.outputs[1:]):
            m = interaction(m, rbf, sbf, idx_kj, idx_ji)
            energy = energy + output(m, rbf, receiver, batch.num_nodes)
        return energy  # [n_atoms]
