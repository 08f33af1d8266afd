"""Grouped weights: N models of one architecture as one module, evaluated in one pass.

A committee evaluates member ``m`` on copy ``m`` of the graph (:func:`potlab.graph.replicate`),
so every node, edge, triplet and frame tensor inside a model is ``N`` equal, contiguous
row blocks, block ``m`` belonging to member ``m``. :func:`group_models` copies the first
member's module tree and replaces each module that owns parameters by a grouped version
holding the ``N`` members' parameters stacked: a linear layer becomes one batched matrix
product ``[N, rows, in] @ [N, in, out]`` instead of ``N`` calls. Graph work (neighbour
lists, gathers, scatters, radial bases) runs once on the ``N``-fold graph, not ``N``
times, and one backward pass gives every member's forces because the copies are disjoint.

Modules with parameters that have no grouped version here (e3nn's in MACE, for example)
make :func:`group_models` raise :class:`NotGroupable`; the committee then evaluates the
members one after another on the shared graph. A new architecture built from
``nn.Linear``, ``nn.Embedding``, ``nn.LayerNorm`` and the bases of
:mod:`potlab.models.radial` is grouped with no extra code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from potlab.models.radial import BesselBasis


class NotGroupable(TypeError):
    """A module owns parameters but has no grouped version."""


def _blocks(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.shape[0] % n:
        raise RuntimeError(f"grouped layer: {x.shape[0]} rows are not {n} equal member blocks")
    return x.reshape(n, -1, x.shape[-1])


class GroupedLinear(nn.Module):
    """``n`` linear layers applied to ``n`` row blocks: weight [n, in, out], bias [n, 1, out]."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.n = len(layers)
        self.weight = nn.Parameter(torch.stack([lin.weight.detach().t() for lin in layers]))
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([lin.bias.detach()[None] for lin in layers])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xb = _blocks(x, self.n)  # [n, rows, in]
        y = torch.bmm(xb, self.weight)  # baddbmm would copy the broadcast bias first
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], y.shape[-1])


class GroupedEmbedding(nn.Module):
    """``n`` embedding tables: weight [n, num, dim]; row block m looks up table m."""

    def __init__(self, layers: Sequence[nn.Embedding]):
        super().__init__()
        self.n = len(layers)
        self.weight = nn.Parameter(torch.stack([e.weight.detach() for e in layers]))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[0] % self.n:
            raise RuntimeError(f"grouped embedding: {idx.shape[0]} rows are not {self.n} member blocks")
        ib = idx.reshape(self.n, -1)
        member = torch.arange(self.n, device=idx.device)[:, None]
        return self.weight[member, ib].reshape(*idx.shape, self.weight.shape[-1])


class GroupedLayerNorm(nn.Module):
    """``n`` layer norms over the last dimension with per-member affine parameters."""

    def __init__(self, layers: Sequence[nn.LayerNorm]):
        super().__init__()
        first = layers[0]
        self.n, self.shape, self.eps = len(layers), tuple(first.normalized_shape), first.eps
        if len(self.shape) != 1:
            raise NotGroupable("LayerNorm over more than the last dimension")
        self.weight = nn.Parameter(torch.stack([ln.weight.detach() for ln in layers])[:, None])
        self.bias = nn.Parameter(torch.stack([ln.bias.detach() for ln in layers])[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = nn.functional.layer_norm(x, self.shape, eps=self.eps)
        return (_blocks(y, self.n) * self.weight + self.bias).reshape(shape)


class GroupedBesselBasis(nn.Module):
    """:class:`~potlab.models.radial.BesselBasis` with per-member trainable frequencies."""

    def __init__(self, layers: Sequence[BesselBasis]):
        super().__init__()
        self.n, self.prefactor = len(layers), layers[0].prefactor
        self.freqs = nn.Parameter(torch.stack([b.freqs.detach() for b in layers])[:, None])  # [n, 1, num]

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        rb = r.reshape(self.n, -1, 1)
        out = self.prefactor * torch.sin(self.freqs.to(r.dtype) * rb) / rb
        return out.reshape(r.shape[0], -1)


GROUPED: dict[type, Callable[[Sequence[nn.Module]], nn.Module]] = {
    nn.Linear: GroupedLinear,
    nn.Embedding: GroupedEmbedding,
    nn.LayerNorm: GroupedLayerNorm,
    BesselBasis: GroupedBesselBasis,
}


def _owns_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters(recurse=False))


def group_models(models: Sequence[nn.Module]) -> nn.Module:
    """One module evaluating ``models[m]`` on row block ``m`` of its inputs.

    The models must share one architecture and configuration. Buffers are taken from
    the first model and must be equal in all (they are configuration, not weights).

    Raises:
        NotGroupable: a module with parameters has no grouped version, or the models
            differ in structure or buffers.
    """
    models = list(models)
    first = models[0]
    names = [n for n, _ in first.named_modules()]
    for other in models[1:]:
        if [n for n, _ in other.named_modules()] != names:
            raise NotGroupable("committee members differ in structure")
        for (name, a), (_, b) in zip(first.named_buffers(), other.named_buffers()):
            if a.shape != b.shape or not torch.equal(a, b):
                raise NotGroupable(f"committee members differ in buffer {name!r}")
    grouped = copy.deepcopy(first)
    members = [dict(m.named_modules()) for m in models]
    for name, module in list(grouped.named_modules()):
        if not name or not _owns_parameters(module):
            continue
        maker = GROUPED.get(type(module))
        if maker is None:
            raise NotGroupable(f"{type(module).__name__} at {name!r} has parameters and no grouped version")
        parent_name, _, attr = name.rpartition(".")
        parent = grouped.get_submodule(parent_name) if parent_name else grouped
        setattr(parent, attr, maker([mods[name] for mods in members]))
    if _owns_parameters(grouped):
        raise NotGroupable(f"{type(grouped).__name__} holds parameters directly")
    return grouped
