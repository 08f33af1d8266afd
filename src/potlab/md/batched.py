"""The batched engine: N independent replicas (temperatures x repeats, even different
structures) of one potlab potential advance together, one Potential call per step for all
of them on one disconnected graph (:mod:`potlab.graph.batch` conventions).

State is float64 torch tensors on the potential's device (positions A, momenta in ASE
units, masses amu); the model runs in its own dtype. Integrators, per step of ``dt``:

- NVE (and the ramp): velocity Verlet, ``p += dt/2 F; r += dt p/m; F = F(r); p += dt/2 F``
  (ASE's ``VelocityVerlet`` step for step).
- Langevin: BAOAB (Leimkuhler and Matthews 2013): half kick, half drift,
  ``p = c p + sqrt((1 - c^2) m kT) xi`` with ``c = exp(-gamma dt)``, half drift, force,
  half kick; ``gamma = friction_per_fs``.
- Bussi: the CSVR rescaling of Bussi, Donadio and Parrinello (2007, eq. A7) with
  ``tau = tdamp_fs`` and ``3N`` degrees of freedom, then a velocity-Verlet step (the order
  of ASE's ``Bussi``).
- Berendsen: momenta scaled by ``sqrt(1 + dt/tau (T0/T - 1))``, bounded to [0.9, 1.1],
  with ``T`` over ``3N`` degrees of freedom, then a velocity-Verlet step (ASE's
  ``NVTBerendsen`` with ``fixcm=False``, which the ASE engine uses; deterministic).
- Nose-Hoover: a chain of 3 per replica (Martyna, Klein and Tuckerman 1992), ASE's
  ``NoseHooverChainNVT`` operation for operation: ``Q_0 = 3N kT tdamp^2``, ``Q_j = kT
  tdamp^2``, the chain propagated over dt/2 with the fourth-order Suzuki-Yoshida weights
  before and after a velocity-Verlet step; deterministic, so a replica follows the ASE
  engine's trajectory to rounding (tested).

Each replica keeps its own target temperature, its own NumPy random generator (seeded
with its seed; the noise of a replica does not depend on which others run beside it), its
monitors, outputs and stop: a failing replica is frozen and dropped from the batch while
the others go on. Neighbour lists are :class:`~potlab.graph.skin.SkinNeighbourList` per
replica (``protocol.skin_A``; 0 searches every step), in one canonical order, so the
graph and forces do not depend on the skin. NPT is not implemented here (the protocol
refuses it for engine batched).

Steered MD (``protocol.steered``, :mod:`potlab.md.batched_steered`) puts
:mod:`potlab.md.steered`'s moving spring on every
replica at once: the mass-weighted centres of the two groups, the tension ``k (L - r)``, its
forces added to the model's and its energy to the potential energy, as the ASE engine's
:class:`~potlab.md.steered.SteeredSpring` does, with the same timing (the forces of step
n -> n+1 at t_(n+1)) and the same trapezoidal work, one ``steered_log.csv`` row per step.
Many pulls of one model then cost about one model call per step (seed 002's barrier is a
pull's maximum work, and one pull scatters with its seed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from potlab.graph.batch import GraphBatch
from potlab.graph.skin import SkinNeighbourList
from potlab.md.batched_steered import BatchedSprings, steer_row
from potlab.md.engine import Engine, MDResult, Replica, Run
from potlab.md.identity import calculator_fingerprint
from potlab.md.loop import RunLoop
from potlab.md.protocol import MDProtocol, parse_protocol

_F64 = torch.float64
_TCHAIN = 3  # ASE's NoseHooverChainNVT default, which the ASE engine uses
# fourth-order Suzuki-Yoshida weights (Yoshida 1990), as ase.md.nose_hoover_chain
_YOSHIDA = (1 / (2 - 2 ** (1 / 3)), -(2 ** (1 / 3)) / (2 - 2 ** (1 / 3)), 1 / (2 - 2 ** (1 / 3)))


_VIEWS = ("pos", "mom", "eta", "p_eta")  # per-run views into the group's tensors


class BatchedEngine(Engine):
    """Replicas of ``potential`` (a :class:`~potlab.potential.Potential`) in lock step."""

    name = "batched"

    def __init__(self, potential, protocol: MDProtocol) -> None:
        self.pot = potential.eval()
        self.protocol = protocol
        self.device = potential.e0_table.device
        self.dt = protocol.timestep_fs * units.fs
        self._key: tuple[int, ...] | None = None
        self._group: list[Run] = []
        self._cand_key: tuple | None = None  # which stored pairs self._cand holds
        self.springs = (BatchedSprings(protocol.steered, protocol.timestep_fs, self.device)
                        if protocol.steered is not None else None)
        self.calls = 0

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__.split("+")[0]}

    # ---- set-up ------------------------------------------------------------------------
    def start(self, runs: list[Run]) -> None:
        dev = self.device
        for r in runs:
            a = r.atoms
            st = r.engine_state
            pos = st["positions"] if st is not None else a.get_positions()
            mom = st["momenta"] if st is not None else a.get_momenta()
            cell = st["cell"] if st is not None else a.cell.array
            pbc = np.asarray(a.pbc, dtype=bool)
            r.data.update(
                pos=torch.tensor(np.asarray(pos), dtype=_F64, device=dev),
                mom=torch.tensor(np.asarray(mom), dtype=_F64, device=dev),
                masses=torch.tensor(a.get_masses(), dtype=_F64, device=dev)[:, None],
                species=torch.tensor(a.numbers, dtype=torch.int64, device=dev),
                cell=np.asarray(cell, dtype=np.float64).copy(), pbc=pbc,
                nl=SkinNeighbourList(self.pot.cutoff, self.protocol.skin_A),
                forces=None, energy=None, stress=None,
                eta=self._chain(st, "eta"), p_eta=self._chain(st, "p_eta"),
            )
            if self.protocol.steered is not None:
                self.protocol.steered.check_atoms(len(a))
                saved = (st or {}).get("spring")
                r.data["spring"] = dict(saved) if saved else {
                    "work_eV": 0.0, "last": None,
                    "rest_length_A": self.springs.rest_length(r)}
        self._compute(list(runs), stress=True, steps=[r.step for r in runs])
        for r in runs:
            if self.protocol.steered is not None and r.engine_state is None:
                r.steer_rows.append(steer_row(r, 0, self.protocol.timestep_fs))

    def _chain(self, state: dict | None, key: str) -> torch.Tensor:
        """[1, 3] Nose-Hoover chain variable of a run: saved, or zero (a new chain)."""
        saved = (state or {}).get("nhc") or {}
        value = saved.get(key, np.zeros(_TCHAIN))
        return torch.tensor(np.asarray(value, dtype=np.float64).reshape(1, _TCHAIN),
                            dtype=_F64, device=self.device)

    # ---- the batch ---------------------------------------------------------------------
    def _regroup(self, group: list[Run]) -> None:
        """Concatenate the state of ``group`` (each run's tensors become views of it)."""
        key = tuple(r.index for r in group)
        if key == self._key:
            return
        for r in self._group:  # detach the old group's views
            for k in _VIEWS:
                r.data[k] = r.data[k].clone()
        self._key, self._group = key, list(group)
        self.pos = torch.cat([r.data["pos"] for r in group])
        self.mom = torch.cat([r.data["mom"] for r in group])
        self.eta = torch.cat([r.data["eta"] for r in group])  # [R, chain]
        self.p_eta = torch.cat([r.data["p_eta"] for r in group])
        self.masses = torch.cat([r.data["masses"] for r in group])
        sizes = [len(r.data["species"]) for r in group]
        self.sizes = sizes
        self.batch = torch.repeat_interleave(torch.arange(len(group), device=self.device),
                                             torch.tensor(sizes, device=self.device))
        start = 0
        for r, n in zip(group, sizes):
            r.data["pos"], r.data["mom"] = self.pos[start:start + n], self.mom[start:start + n]
            r.data["rows"] = (start, n)
            start += n
        for k, r in enumerate(group):
            r.data["eta"], r.data["p_eta"] = self.eta[k:k + 1], self.p_eta[k:k + 1]
        self.kT = torch.tensor([units.kB * r.temperature_K for r in group], dtype=_F64,
                               device=self.device)
        # Nose-Hoover chain masses (ASE's NoseHooverChainThermostat): 3N kT tdamp^2, kT tdamp^2
        tdamp2 = (self.protocol.tdamp_fs * units.fs) ** 2
        self.dof_kT = 3 * torch.tensor(sizes, dtype=_F64, device=self.device) * self.kT
        self.Q = (self.kT * tdamp2)[:, None].repeat(1, _TCHAIN)
        self.Q[:, 0] = self.dof_kT * tdamp2

    def graph(self, group: list[Run]) -> GraphBatch:
        """The neighbour graph of ``group`` (float64; the Potential casts it): every
        replica's stored skin pairs, filtered to the cutoff in one pass over the group's
        positions (the same test, in the same float64 arithmetic, as
        :meth:`SkinNeighbourList.pairs`, so the same edges in the same order)."""
        dev = self.device
        builds, stored = [], []
        for r in group:
            d = r.data
            stored.append(d["nl"].candidates(d["pos"].detach().cpu().numpy(), d["cell"], d["pbc"]))
            builds.append(d["nl"].builds)
        key = (tuple(r.index for r in group), tuple(builds))
        if key != self._cand_key:  # another group, or some replica searched again
            senders, receivers, shifts, cart, offset = [], [], [], [], 0
            for r, (i, j, S, shift) in zip(group, stored):
                senders.append(i + offset)
                receivers.append(j + offset)
                shifts.append(S)
                cart.append(shift)
                offset += len(r.data["species"])
            self._cand = (torch.from_numpy(np.concatenate(senders)).to(dev),
                          torch.from_numpy(np.concatenate(receivers)).to(dev),
                          torch.from_numpy(np.concatenate(shifts).reshape(-1, 3)).to(dev),
                          torch.from_numpy(np.concatenate(cart).reshape(-1, 3)).to(dev))
            self._cand_key = key
        ci, cj, cS, cshift = self._cand
        pos = torch.cat([r.data["pos"] for r in group])
        p = pos.detach()
        vec = p[cj] - p[ci] + cshift
        keep = (vec * vec).sum(dim=1) < self.pot.cutoff ** 2
        edge_index = torch.stack([ci[keep], cj[keep]])
        us = cS[keep]
        cell = torch.tensor(np.stack([r.data["cell"] if r.data["pbc"].any() else np.zeros((3, 3))
                                      for r in group]), dtype=_F64, device=dev)
        sizes = [len(r.data["species"]) for r in group]
        batch = torch.repeat_interleave(torch.arange(len(group), device=dev),
                                        torch.tensor(sizes, device=dev))
        return GraphBatch(
            species=torch.cat([r.data["species"] for r in group]), positions=pos,
            edge_index=edge_index, unit_shifts=us,
            shifts=torch.einsum("ek,ekl->el", us.to(_F64), cell[batch[edge_index[0]]]),
            batch=batch, cell=cell,
            pbc=torch.tensor(np.stack([r.data["pbc"] for r in group]), device=dev),
            n_atoms=torch.tensor(sizes, device=dev))

    def _compute(self, group: list[Run], stress: bool, steps: list[int]) -> torch.Tensor:
        """Forces [n, 3] (float64) for ``group`` at ``steps`` (the spring's time); energies
        and stress kept per run."""
        g = self.graph(group)
        want_stress = stress and bool(g.pbc.all(dim=1).any())
        out = self.pot(g, forces=True, stress=want_stress)
        self.calls += 1
        forces = out["forces"].detach().to(_F64)
        energy = out["energy"].detach().double().cpu().numpy()
        if self.protocol.steered is not None:
            energy = energy + self.springs.add(group, g.positions.detach(), forces, steps)
        st = out["stress"].detach().double().cpu().numpy() if want_stress else None
        start = 0
        for k, r in enumerate(group):
            n = len(r.data["species"])
            r.data["forces"] = forces[start:start + n]
            r.data["energy"] = float(energy[k])
            r.data["stress"] = st[k] if st is not None and r.data["pbc"].all() else None
            start += n
        return forces

    # ---- integration -------------------------------------------------------------------
    def _noise(self, group: list[Run]) -> torch.Tensor:
        xi = np.concatenate([r.rng.standard_normal((len(r.data["species"]), 3)) for r in group])
        return torch.from_numpy(xi).to(self.device)

    def _bussi(self, group: list[Run]) -> None:
        """Scale each replica's momenta by the CSVR factor (Bussi et al. 2007, eq. A7)."""
        c = math.exp(-self.dt / (self.protocol.tdamp_fs * units.fs))
        ekin = torch.zeros(len(group), dtype=_F64, device=self.device).index_add(
            0, self.batch, 0.5 * (self.mom**2 / self.masses).sum(dim=1)).cpu().numpy()
        alpha = np.ones(len(group))
        for k, r in enumerate(group):
            ndof = 3 * len(r.data["species"])
            target = 0.5 * ndof * units.kB * r.temperature_K
            r1 = r.rng.standard_normal()
            s = 2.0 * r.rng.standard_gamma(0.5 * (ndof - 1))
            term = (1 - c) * target / ekin[k] / ndof
            alpha[k] = math.sqrt(c + term * (s + r1**2) + 2 * r1 * math.sqrt(c * term))
        self.mom *= torch.from_numpy(alpha).to(self.device)[self.batch][:, None]

    def _berendsen(self) -> None:
        """Scale each replica's momenta towards its temperature (ASE's ``NVTBerendsen``)."""
        ratio = self.dt / (self.protocol.tdamp_fs * units.fs)
        # T0 / T = 3N kB T0 / sum(p^2 / m)
        lam = torch.sqrt(1.0 + (self.dof_kT / self._twice_ekin() - 1.0) * ratio).clamp(0.9, 1.1)
        self.mom *= lam[self.batch][:, None]

    def _twice_ekin(self) -> torch.Tensor:
        """[R] sum over each replica's atoms of p^2 / m (2 x kinetic energy)."""
        return torch.zeros(len(self.sizes), dtype=_F64, device=self.device).index_add(
            0, self.batch, (self.mom**2 / self.masses).sum(dim=1))

    def _p_eta_j(self, j: int, delta2: float, delta4: float) -> None:
        Q, pe = self.Q, self.p_eta
        if j < _TCHAIN - 1:
            pe[:, j] *= torch.exp(-delta4 * pe[:, j + 1] / Q[:, j + 1])
        g = self._twice_ekin() - self.dof_kT if j == 0 else pe[:, j - 1] ** 2 / Q[:, j - 1] - self.kT
        pe[:, j] += delta2 * g
        if j < _TCHAIN - 1:
            pe[:, j] *= torch.exp(-delta4 * pe[:, j + 1] / Q[:, j + 1])

    def _nose_hoover(self, delta: float) -> None:
        """exp(iL_NHC delta) for every replica at once (ASE's ``integrate_nhc``, tloop 1)."""
        for w in _YOSHIDA:
            d = w * delta
            for j in reversed(range(_TCHAIN)):
                self._p_eta_j(j, d / 2, d / 4)
            self.eta += d * self.p_eta / self.Q
            self.mom *= torch.exp(-d * self.p_eta[:, 0] / self.Q[:, 0])[self.batch][:, None]
            for j in range(_TCHAIN):
                self._p_eta_j(j, d / 2, d / 4)

    def advance(self, runs: list[Run], n: int, phase: str, stress: bool) -> None:
        self._regroup(runs)
        p = self.protocol
        thermostat = p.thermostat if (phase == "production" and p.ensemble == "nvt") else None
        dt, m = self.dt, self.masses
        forces = torch.cat([r.data["forces"] for r in runs])
        if thermostat == "langevin":
            c1 = math.exp(-p.friction_per_fs / units.fs * dt)
            sigma = torch.sqrt((1 - c1**2) * m * self.kT[self.batch][:, None])  # [n, 1]
        for k in range(n):
            if thermostat == "bussi":
                self._bussi(runs)
            elif thermostat == "berendsen":
                self._berendsen()
            elif thermostat == "nose-hoover":
                self._nose_hoover(0.5 * dt)
            self.mom.add_(forces, alpha=0.5 * dt)
            if thermostat == "langevin":
                self.pos.add_(self.mom / m, alpha=0.5 * dt)
                self.mom.mul_(c1).add_(sigma * self._noise(runs))
                self.pos.add_(self.mom / m, alpha=0.5 * dt)
            else:
                self.pos.add_(self.mom / m, alpha=dt)
            step = runs[0].step + k + 1  # a group is at one step
            forces = self._compute(runs, stress=stress and k == n - 1, steps=[step] * len(runs))
            self.mom.add_(forces, alpha=0.5 * dt)
            if thermostat == "nose-hoover":
                self._nose_hoover(0.5 * dt)
            if self.protocol.steered is not None:
                for r in runs:
                    r.steer_rows.append(steer_row(r, step, self.protocol.timestep_fs))

    # ---- reporting -----------------------------------------------------------------------
    def frames(self, runs: list[Run], stress: bool = True) -> list[Atoms]:
        out = []
        for r in runs:
            d = r.data
            a = r.atoms.copy()
            a.calc = None
            a.set_cell(d["cell"])
            a.set_positions(d["pos"].detach().cpu().numpy())
            a.set_momenta(d["mom"].detach().cpu().numpy())
            results = {"energy": d["energy"], "forces": d["forces"].detach().cpu().numpy()}
            if d["stress"] is not None:
                results["stress"] = full_3x3_to_voigt_6_stress(d["stress"])
            a.calc = SinglePointCalculator(a, **results)
            out.append(a)
        return out

    def rescale(self, run: Run, target_K: float) -> None:
        d = run.data
        ekin = float(0.5 * (d["mom"] ** 2 / d["masses"]).sum())
        current = 2 * ekin / (3 * len(d["species"]) * units.kB)
        if current > 0 and math.isfinite(current):
            d["mom"].mul_(math.sqrt(target_K / current))

    def state(self, run: Run) -> dict[str, Any]:
        d = run.data
        return {"positions": d["pos"].detach().cpu().numpy().copy(),
                "momenta": d["mom"].detach().cpu().numpy().copy(), "cell": d["cell"].copy(),
                "nhc": {"eta": d["eta"].detach().cpu().numpy().ravel().copy(),
                        "p_eta": d["p_eta"].detach().cpu().numpy().ravel().copy()},
                "spring": dict(d["spring"]) if "spring" in d else None}

    def stop(self, run: Run) -> None:
        if self._key is not None and run.index in self._key:
            for r in self._group:
                for k in _VIEWS:
                    r.data[k] = r.data[k].clone()
            self._key, self._group = None, []
        run.data["stopped"] = True


def run_batched(replicas: list[Replica | tuple], potential, protocol: MDProtocol,
                resume: bool = True, committee=None) -> list[MDResult]:
    """Run N replicas of one potential together, one model call per step for all of them.

    ``replicas``: a list of :class:`~potlab.md.engine.Replica` or of tuples ``(atoms,
    out_dir, temperature_K, seed)`` (``temperature_K``/``seed`` None: the protocol's first
    temperature / its seed; structures may differ in size and composition). ``potential``:
    a :class:`~potlab.potential.Potential` (or its calculator). ``protocol``: an
    :class:`MDProtocol` with ensemble nve, or nvt with any thermostat, steered or not (any
    ``engine`` value; this function is the batched engine). ``resume``: continue
    checkpoints (after checking the saved settings; a finished replica returns its
    result.json), else start over. ``committee``: a Committee evaluated every
    ``protocol.uncertainty.every_steps`` (default: the protocol's committee file).

    Each replica writes in its ``out_dir`` exactly what :func:`potlab.md.run_md` writes
    (``trajectory.extxyz``/``.traj``, ``md_log.csv``, ``protocol.json``,
    ``checkpoint.pkl``, ``result.json``), resumes after a kill, has its own monitors
    (``Replica.monitors`` or the protocol's) and its own stop. The same seed and
    temperature give the same trajectory whichever replicas run beside it (to the last bits
    of the model's arithmetic). Returns one :class:`MDResult` per replica, in order.
    """
    pot = getattr(potential, "potential", potential)
    reps = [r if isinstance(r, Replica) else Replica(r[0], Path(r[1]), *r[2:]) for r in replicas]
    proto = protocol if protocol.engine == "batched" else parse_protocol(
        {**protocol.model_dump(exclude_unset=True), "engine": "batched"}, "run_batched")
    loop = RunLoop(BatchedEngine(pot, proto), proto, calculator_fingerprint(pot), resume=resume,
                   committee=committee, desc="batched MD")
    return loop.run(reps)


__all__ = ["BatchedEngine", "run_batched"]
