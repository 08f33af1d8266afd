"""Shared radial pieces: cutoff envelopes, radial bases, species lookup."""

from __future__ import annotations

import math

import torch
from torch import nn


class CosineCutoff(nn.Module):
    """f(r) = 0.5 (cos(pi r / r_c) + 1) for r < r_c, else 0 (Behler)."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # [n_edges] -> [n_edges]
        f = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        return f * (r < self.cutoff).to(r.dtype)


class GaussianBasis(nn.Module):
    """exp(-gamma (r - mu_k)^2) on ``num`` centres in [0, cutoff] (SchNet eq. 5)."""

    def __init__(self, cutoff: float, num: int = 32):
        super().__init__()
        centers = torch.linspace(0.0, cutoff, num)
        self.register_buffer("centers", centers)
        self.gamma = 0.5 / float(centers[1] - centers[0]) ** 2

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # [n_edges] -> [n_edges, num]
        return torch.exp(-self.gamma * (r[:, None] - self.centers.to(r.dtype)) ** 2)


class SpeciesIndex(nn.Module):
    """Maps atomic numbers to 0..n_elements-1; an unknown element raises naming it."""

    def __init__(self, elements: list[int]):
        super().__init__()
        table = torch.full((119,), -1, dtype=torch.int64)
        table[torch.tensor(elements, dtype=torch.int64)] = torch.arange(len(elements))
        self.register_buffer("table", table)
        self.elements = list(elements)

    def forward(self, species: torch.Tensor) -> torch.Tensor:
        idx = self.table[species]
        if _tracing():  # torch.export: no data-dependent branch; the exporter checks inputs
            return idx
        if bool((idx < 0).any()):
            bad = sorted(set(species[idx < 0].tolist()))
            raise ValueError(f"element(s) Z={bad} not in the model's elements {self.elements}")
        return idx


def _tracing() -> bool:
    return torch.compiler.is_exporting() or torch.compiler.is_compiling()


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """ssp(x) = ln(0.5 e^x + 0.5) (SchNet)."""
    return nn.functional.softplus(x) - math.log(2.0)


class BesselBasis(nn.Module):
    """sqrt(2/r_c) sin(n pi r / r_c) / r, n = 1..num (DimeNet eq. 7); trainable frequencies."""

    def __init__(self, cutoff: float, num: int = 8, trainable: bool = False):
        super().__init__()
        self.cutoff = float(cutoff)
        freqs = math.pi * torch.arange(1, num + 1, dtype=torch.get_default_dtype()) / self.cutoff
        if trainable:
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)
        self.prefactor = math.sqrt(2.0 / self.cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # [n_edges] -> [n_edges, num]
        r = r[:, None]
        return self.prefactor * torch.sin(self.freqs.to(r.dtype) * r) / r


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff u(d), d = r / r_c: 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1)
    - p(p+1)/2 d^(p+2) for d < 1, else 0 (DimeNet eq. 8); twice differentiable at r_c."""

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # [n_edges] -> [n_edges]
        p, d = self.p, r / self.cutoff
        u = 1 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1) - p * (p + 1) / 2 * d ** (p + 2)
        return u * (d < 1).to(r.dtype)
