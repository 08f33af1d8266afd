"""ANI (Behler-Parrinello) network: per-element MLPs on atomic environment vectors.

Smith, Isayev and Roitberg, Chem. Sci. 8, 3192 (2017) (ANI-1); Devereux et al.,
J. Chem. Theory Comput. 16, 4192 (2020) (ANI-2x); seed 002 (eqs. 1-2, Table 1, GELU).

The AEV of atom i concatenates, for every neighbour species s, the radial terms

    G^R_{i,s,m} = sum_{j in s, r_ij < Rcr} 0.25 exp(-eta_R (r_ij - ShfR_m)^2) f_C(r_ij; Rcr)

and, for every unordered species pair (s, t), the angular terms over unordered neighbour
pairs {j, k} (j in s, k in t, both within Rca)

    G^A_{i,st,pq} = sum_{j<k} 2 ((1 + cos(theta'_ijk - ShfZ_q)) / 2)^zeta
                    exp(-eta_A ((r_ij + r_ik)/2 - ShfA_p)^2) f_C(r_ij; Rca) f_C(r_ik; Rca)

with cos(theta') = 0.95 cos(theta_ijk). The 0.25 and 0.95 factors follow TorchANI /
NeuroChem (the paper's equations omit them); 2 sum_{j<k} equals seed 002's
2^(1-zeta) sum_{j,k} over unordered pairs. Each element has its own MLP
AEV -> h1 -> h2 -> h3 -> E_i with GELU between layers (seed 002, Table 1).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import CosineCutoff, SpeciesIndex
from potlab.models.registry import ModelConfig, register

# Seed 002, Table 1 (H, C) and ANI-2x's other networks (TorchANI); atomic number -> widths.
ANI2X_HIDDEN: dict[int, list[int]] = {
    1: [256, 192, 160],
    6: [224, 192, 160],
    7: [192, 160, 128],
    8: [192, 160, 128],
    9: [160, 128, 96],
    16: [160, 128, 96],
    17: [160, 128, 96],
}


def neighbour_pairs(
    centre: torch.Tensor, num_nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """All unordered pairs of edges that share their centre atom.

    ``centre`` [n_edges] is the centre of each edge. Returns (a, b), each [n_pairs],
    indices into the edges with centre[a] == centre[b] and a != b, every pair once.
    Cost O(n_edges + n_pairs); no Python loop over atoms.
    """
    order = torch.argsort(centre, stable=True)  # edges grouped by centre
    c = centre[order]
    counts = torch.bincount(c, minlength=num_nodes)  # [n_atoms]
    start = torch.cumsum(counts, 0) - counts  # first sorted position of each centre
    n = order.shape[0]
    pos = torch.arange(n, device=centre.device) - start[c]  # rank within its group
    n_after = counts[c] - 1 - pos  # partners that come later in the group
    first = torch.repeat_interleave(torch.arange(n, device=centre.device), n_after)
    block = torch.cumsum(n_after, 0) - n_after
    step = torch.arange(first.shape[0], device=centre.device)
    step = step - torch.repeat_interleave(block, n_after)  # rank within the block
    second = first + 1 + step
    return order[first], order[second]


class AEV(nn.Module):
    """ANI atomic environment vector (radial eq. 1 + angular eq. 2 of seed 002).

    Output [n_atoms, n_species * n_radial + n_pairs * n_angle_sections * n_angular].
    """

    def __init__(self, config: ANI.Config, num_species: int):
        super().__init__()
        self.num_species = num_species
        self.radial_cutoff = float(config.cutoff)
        self.angular_cutoff = float(config.angular_cutoff)
        self.eta_r = float(config.eta_radial)
        self.eta_a = float(config.eta_angular)
        self.zeta = float(config.zeta)
        start, f64 = config.shift_start, torch.float64  # exact constants in float64
        shf_r = torch.linspace(start, config.cutoff, config.num_radial_shifts + 1, dtype=f64)[:-1]
        n_a = config.num_angular_shifts + 1
        shf_a = torch.linspace(start, config.angular_cutoff, n_a, dtype=f64)[:-1]
        self.register_buffer("shf_r", shf_r)  # ShfR [n_radial], A
        self.register_buffer("shf_a", shf_a)  # ShfA [n_angular], A
        n_z = config.num_angle_sections
        shf_z = (2 * torch.arange(n_z, dtype=f64) + 1) * math.pi / (2 * n_z)
        self.register_buffer("shf_z", shf_z)  # ShfZ [n_angle_sections], rad
        self.fc_r = CosineCutoff(config.cutoff)
        self.fc_a = CosineCutoff(config.angular_cutoff)
        # unordered species pair (s, t) -> column block; pair_index[s, t] == pair_index[t, s]
        s, t = torch.triu_indices(num_species, num_species)
        pair = torch.zeros(num_species, num_species, dtype=torch.int64)
        pair[s, t] = torch.arange(s.shape[0])
        pair[t, s] = torch.arange(s.shape[0])
        self.register_buffer("pair_index", pair)
        self.num_pairs = int(s.shape[0])
        self.radial_length = num_species * config.num_radial_shifts
        self.angular_length = self.num_pairs * n_z * config.num_angular_shifts
        self.length = self.radial_length + self.angular_length

    def radial(self, r: torch.Tensor, centre, neighbour_species, num_nodes: int) -> torch.Tensor:
        """G^R: [n_atoms, n_species * n_radial]."""
        shf = self.shf_r.to(r.dtype)
        gauss = torch.exp(-self.eta_r * (r[:, None] - shf) ** 2)  # [E, nR]
        terms = 0.25 * gauss * self.fc_r(r)[:, None]  # [E, nR]
        out = r.new_zeros(num_nodes * self.num_species, shf.shape[0])
        out = out.index_add(0, centre * self.num_species + neighbour_species, terms)
        return out.view(num_nodes, -1)

    def angular(self, vec, r, centre, neighbour_species, num_nodes: int) -> torch.Tensor:
        """G^A: [n_atoms, n_pairs * n_angle_sections * n_angular]."""
        keep = torch.nonzero(r < self.angular_cutoff).squeeze(1)  # edges within Rca
        vec, r, centre, spec = vec[keep], r[keep], centre[keep], neighbour_species[keep]
        a, b = neighbour_pairs(centre, num_nodes)  # [n_triplets] each
        cos = 0.95 * (vec[a] * vec[b]).sum(-1) / (r[a] * r[b])  # cos(theta'), |.| <= 0.95
        sin = torch.sqrt(1.0 - cos**2)
        shf_z, shf_a = self.shf_z.to(r.dtype), self.shf_a.to(r.dtype)
        # cos(theta' - ShfZ) without acos: twice differentiable everywhere
        cos_shift = cos[:, None] * torch.cos(shf_z) + sin[:, None] * torch.sin(shf_z)  # [T, nZ]
        f1 = 2.0 * ((1.0 + cos_shift) / 2.0) ** self.zeta  # [T, nZ]
        mean_r = 0.5 * (r[a] + r[b])
        f2 = torch.exp(-self.eta_a * (mean_r[:, None] - shf_a) ** 2)  # [T, nA]
        fc = self.fc_a(r)
        f2 = f2 * (fc[a] * fc[b])[:, None]  # the cutoffs on the small factor: one [T, nA, nZ]
        terms = torch.bmm(f2[:, :, None], f1[:, None, :])  # [T, nA, nZ]  product (bmm: ~20%
        # faster than broadcasting, forward and both backward passes)
        slot = centre[a] * self.num_pairs + self.pair_index[spec[a], spec[b]]  # [T]
        out = r.new_zeros(num_nodes * self.num_pairs, shf_a.shape[0] * shf_z.shape[0])
        out = out.index_add(0, slot, terms.flatten(1))
        return out.view(num_nodes, -1)

    def forward(self, species_index: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        vec, r = edge_vectors(batch)  # [E, 3], [E]; centre i = sender, neighbour j = receiver
        centre, neighbour = batch.edge_index[0], batch.edge_index[1]
        spec = species_index[neighbour]
        n = batch.num_nodes
        within = torch.nonzero(r < self.radial_cutoff).squeeze(1)
        radial = self.radial(r[within], centre[within], spec[within], n)
        angular = self.angular(vec, r, centre, spec, n)
        return torch.cat([radial, angular], dim=1)  # [n_atoms, length]


class ElementNetworks(nn.Module):
    """One MLP per element, AEV -> E_i; atoms are grouped by element (a loop over the
    few elements, each a batched matmul over all its atoms)."""

    def __init__(self, in_features: int, widths: list[list[int]]):
        super().__init__()
        nets = []
        for hidden in widths:
            layers: list[nn.Module] = []
            last = in_features
            for h in hidden:
                layers += [nn.Linear(last, h), nn.GELU()]
                last = h
            layers.append(nn.Linear(last, 1))
            nets.append(nn.Sequential(*layers))
        self.nets = nn.ModuleList(nets)

    def forward(self, aev: torch.Tensor, species_index: torch.Tensor) -> torch.Tensor:
        out = aev.new_zeros(aev.shape[0])  # [n_atoms]
        for e, net in enumerate(self.nets):
            idx = torch.nonzero(species_index == e).squeeze(1)  # may be empty: no branch
            out = out.index_copy(0, idx, net(aev[idx]).squeeze(-1))
        return out


@register("ani")
class ANI(nn.Module):
    """Behler-Parrinello / ANI-2x: per-element GELU MLPs on radial + angular AEVs."""

    class Config(ModelConfig):
        cutoff: float = Field(5.1, gt=0, description="radial cutoff Rcr (A); ANI-2x 5.1")
        angular_cutoff: float = Field(3.5, gt=0, description="angular cutoff Rca (A); ANI-2x 3.5")
        eta_radial: float = 19.7  # EtaR (1/A^2)
        num_radial_shifts: int = Field(16, ge=1)  # ShfR = linspace(shift_start, Rcr)[:-1]
        zeta: float = 14.1  # angular sharpness
        num_angle_sections: int = Field(4, ge=1)  # ShfZ = (2q+1) pi / (2 n)
        eta_angular: float = 12.5  # EtaA (1/A^2)
        num_angular_shifts: int = Field(8, ge=1)  # ShfA = linspace(shift_start, Rca)[:-1]
        shift_start: float = 0.8  # first radial / angular shift (A)
        # MLP widths for elements not in element_hidden
        hidden: list[int] = Field(default_factory=lambda: [160, 128, 96])
        # atomic number -> MLP widths (seed 002 Table 1 for H, C; ANI-2x for N, O, F, S, Cl)
        element_hidden: dict[int, list[int]] = Field(default_factory=lambda: dict(ANI2X_HIDDEN))

    presets: ClassVar[dict[str, dict]] = {
        # seed 000 standardised a 6 A cutoff; applied to the radial AEV, Rca stays ANI-2x's
        # 3.5 A (angular cost grows with the square of the neighbour count).
        "seed000": {"cutoff": 6.0},
        "tiny": {"num_radial_shifts": 8, "num_angle_sections": 2, "num_angular_shifts": 4,
                 "hidden": [16, 16], "element_hidden": {}},
    }

    def __init__(
        self, config: ANI.Config, elements: list[int], avg_num_neighbors: float = 10.0
    ):
        super().__init__()
        self.config = config
        self.cutoff = max(config.cutoff, config.angular_cutoff)
        self.species_index = SpeciesIndex(elements)
        self.aev_computer = AEV(config, len(elements))
        widths = [list(config.element_hidden.get(int(z), config.hidden)) for z in elements]
        self.networks = ElementNetworks(self.aev_computer.length, widths)

    def aev(self, batch: GraphBatch) -> torch.Tensor:
        """Atomic environment vectors [n_atoms, aev_length] of a batch."""
        return self.aev_computer(self.species_index(batch.species), batch)

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        s = self.species_index(batch.species)
        aev = self.aev_computer(s, batch)  # [n_atoms, D]
        return self.networks(aev, s)  # [n_atoms]
