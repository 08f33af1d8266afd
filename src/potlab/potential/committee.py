"""Committee: N potentials of one architecture evaluated together, with their spread.

The members (different seeds, different training splits) keep their own E0 tables,
shifts and scales. Their models are grouped (:mod:`potlab.models.grouped`): member ``m``
runs on copy ``m`` of one neighbour graph, every linear layer is one batched matrix
product over the members, and one backward pass gives all members' forces. An
architecture whose layers have no grouped version (MACE's e3nn layers) is evaluated
member by member on the shared graph instead; :attr:`Committee.grouped` tells which.
Grouping saves per-call overhead, not arithmetic: on a CPU a compute-bound model (DimeNet++
with its triplets, PaiNN, SchNet's edge filters) can be slower grouped than member by
member, whose smaller tensors stay in cache, so the default ``group="auto"`` times both
paths (three alternating rounds) on the first structure it sees and keeps the faster (both give the same numbers to rounding; ``tests/test_committee.py``).

Uncertainty, as seed 003 uses it: per-atom force variance
``var_i = (1/N) sum_m |F_m,i - mean_m F_m,i|^2`` (eV^2/A^2), its maximum over atoms
(seed 003 flags a frame when it exceeds 0.5 eV^2/A^2), and the standard deviation of
the members' total energies (eV).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from potlab.atomic import atomic_open
from potlab.graph import GraphBatch, build_graph, replicate
from potlab.models.grouped import NotGroupable, group_models
from potlab.potential.calculator import GraphModelCalculator
from potlab.potential.potential import Float64Buffers, Potential, energy_and_derivatives

log = logging.getLogger(__name__)
FORMAT = "potlab-committee/1"


class Committee(Float64Buffers):
    """``N`` potentials of one architecture and configuration, evaluated in one pass.

    ``forward`` returns energy [N, n_frames] (eV), forces [N, n_atoms, 3] (eV/A),
    node_energy [N, n_atoms] and, with ``stress=True``, stress [N, n_frames, 3, 3].
    ``group=True`` always uses the grouped model, ``False`` evaluates the members one
    after another on the shared graph, ``"auto"`` picks the faster on the first call.
    """

    float64_buffers = ("e0_table", "shift", "scale")

    def __init__(self, members: Sequence[Potential], group: bool | str = "auto"):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("a committee needs at least one member")
        first = members[0]
        for k, p in enumerate(members[1:], start=1):
            if p.model_name != first.model_name or p.model_params != first.model_params:
                raise ValueError(f"committee member {k} is {p.model_name} {p.model_params}, "
                                 f"member 0 is {first.model_name} {first.model_params}")
            if p.elements != first.elements:
                raise ValueError(f"committee member {k} has elements {p.elements}, member 0 {first.elements}")
        self.members = nn.ModuleList(members)
        self.register_buffer("e0_table", torch.stack([p.e0_table for p in members]))  # [N, 119]
        self.register_buffer("shift", torch.stack([p.shift for p in members]))  # [N]
        self.register_buffer("scale", torch.stack([p.scale for p in members]))  # [N]
        if group not in (True, False, "auto"):
            raise ValueError(f"group must be True, False or 'auto', got {group!r}")
        self.grouped_model: nn.Module | None = None
        self.why_not_grouped: str | None = "group=False" if not group else None
        self._auto = group == "auto"
        if group:
            try:
                self.grouped_model = group_models([p.model for p in members]).to(first.dtype)
            except NotGroupable as err:
                self.why_not_grouped = str(err)
                self._auto = False
                log.info("committee of %s evaluated member by member: %s", first.model_name, err)
        self.metadata: dict[str, Any] = {}

    @property
    def grouped(self) -> bool:
        return self.grouped_model is not None

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def cutoff(self) -> float:
        return self.members[0].cutoff

    @property
    def dtype(self) -> torch.dtype:
        return self.members[0].dtype

    @property
    def device(self) -> torch.device:
        return self.e0_table.device

    @property
    def model_name(self) -> str:
        return self.members[0].model_name

    def graph(self, frames) -> GraphBatch:
        return build_graph(frames, self.cutoff, dtype=self.dtype).to(self.e0_table.device)

    def forward(self, batch: GraphBatch, forces: bool = True, stress: bool = False) -> dict[str, torch.Tensor]:
        if self._auto:
            self._choose_path(batch)
        n, g = self.size, batch.num_graphs
        big = replicate(batch.to(device=self.e0_table.device, dtype=self.dtype), n)  # member m on copy m
        out = energy_and_derivatives(self._node_energy, big, forces, stress, training=False)
        res = {"energy": out["energy"].reshape(n, g), "node_energy": out["node_energy"].reshape(n, -1)}
        if forces:
            res["forces"] = out["forces"].reshape(n, -1, 3)
        if stress:
            res["stress"] = out["stress"].reshape(n, g, 3, 3)
        return res

    def _choose_path(self, batch: GraphBatch) -> None:
        """Time both paths, alternating, three rounds (the first warms up: allocations,
        code generation); keep the faster by its best time."""
        self._auto = False
        grouped, times = self.grouped_model, {"grouped": math.inf, "members": math.inf}
        for k, path in enumerate(("grouped", "members") * 3):
            self.grouped_model = grouped if path == "grouped" else None
            t = time.perf_counter()
            self.forward(batch, forces=True)
            if k >= 2:
                times[path] = min(times[path], time.perf_counter() - t)
        if times["members"] < times["grouped"]:
            self.grouped_model = None
            self.why_not_grouped = (f"auto: member by member took {times['members'] * 1e3:.1f} ms, "
                                    f"grouped {times['grouped'] * 1e3:.1f} ms")
        else:
            self.grouped_model = grouped
        log.info("committee path: %s (%s)", "grouped" if self.grouped else "members", times)

    def _node_energy(self, graph: GraphBatch) -> torch.Tensor:
        n = self.size
        species = graph.species.reshape(n, -1)
        if self.grouped_model is not None:
            model_e = self.grouped_model(graph).reshape(n, -1)
        else:  # members one after another, each on its copy of the graph
            rows = species.shape[1]
            model_e = torch.stack([
                p.model(_block(graph, m, n, rows)) for m, p in enumerate(self.members)
            ])
        e0 = torch.gather(self.e0_table, 1, species)
        node_e = e0 + self.shift[:, None] + self.scale[:, None] * model_e.double()
        return node_e.reshape(-1)

    def calculator(self, **kwargs) -> CommitteeCalculator:
        return CommitteeCalculator(self, **kwargs)

    # ---- persistence ---------------------------------------------------------------
    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
        """One file: every member's spec and weights (atomic write)."""
        path = Path(path)
        state = {
            "format": FORMAT,
            "members": [
                {"spec": p.spec(), "state_dict": {k: v.detach().cpu() for k, v in p.state_dict().items()},
                 "metadata": p.metadata}
                for p in self.members
            ],
            "metadata": {**self.metadata, **(metadata or {})},
        }
        with atomic_open(path, "wb") as fh:
            torch.save(state, fh)
        return path


def _block(graph: GraphBatch, m: int, n: int, rows: int) -> GraphBatch:
    """Copy ``m`` of a graph replicated ``n`` times (``rows`` atoms per copy)."""
    e = graph.edge_index.shape[1] // n
    f = graph.num_graphs // n
    sl, se, sf = slice(m * rows, (m + 1) * rows), slice(m * e, (m + 1) * e), slice(m * f, (m + 1) * f)
    return GraphBatch(
        species=graph.species[sl], positions=graph.positions[sl],
        edge_index=graph.edge_index[:, se] - m * rows, unit_shifts=graph.unit_shifts[se],
        shifts=graph.shifts[se], batch=graph.batch[sl] - m * f, cell=graph.cell[sf],
        pbc=graph.pbc[sf], n_atoms=graph.n_atoms[sf],
    )


def committee_statistics(energy: np.ndarray, forces: np.ndarray) -> dict[str, Any]:
    """Mean and spread of one frame's members: energy [N] (eV), forces [N, n_atoms, 3].

    Returns energy (mean, eV), energy_std (eV), forces (mean, eV/A), forces_var
    [n_atoms] (eV^2/A^2, mean squared deviation of the force vectors) and
    max_forces_var (eV^2/A^2).
    """
    mean_f = forces.mean(axis=0)
    var = ((forces - mean_f) ** 2).sum(axis=-1).mean(axis=0)
    return {
        "energy": float(energy.mean()), "energy_std": float(energy.std()),
        "forces": mean_f, "forces_var": var, "max_forces_var": float(var.max()) if var.size else 0.0,
    }


class CommitteeCalculator(GraphModelCalculator):
    """ASE calculator of a :class:`Committee`: mean energy, forces and stress, and the
    spread (``energy_std`` eV, ``forces_var`` [n_atoms] and ``max_forces_var``
    eV^2/A^2), plus every member's ``member_energies`` and ``member_forces``."""

    implemented_properties: ClassVar[list[str]] = [
        "energy", "free_energy", "forces", "stress", "energy_std", "forces_var",
        "max_forces_var", "member_energies", "member_forces",
    ]

    def __init__(self, committee: Committee, **kwargs):
        super().__init__(committee, **kwargs)

    @property
    def committee(self) -> Committee:
        return self.model

    def results_from(self, out):
        energy = out["energy"][:, 0]  # [N] eV
        stats = committee_statistics(energy, out["forces"])
        return {**stats, "free_energy": stats["energy"], "member_energies": energy,
                "member_forces": out["forces"]}

    def stress_from(self, stress):
        return stress[:, 0].mean(axis=0)  # [N, 1, 3, 3] -> members' mean [3, 3]
