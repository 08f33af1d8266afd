"""Centre-of-mass diffusion per molecule type with block averages (seed 003, section 3.2).

Molecules are the connected components of the covalent bond graph at frame 0 (two atoms are
bonded when closer than ``bond_scale`` times the sum of their natural covalent radii, ASE's
``natural_cutoffs``, periodic images included); a molecule type is the component's chemical
formula. Centre-of-mass paths come from unwrapped atom paths, so a molecule split by the cell
boundary at frame 0 still moves correctly.

Blocks, as in seed 003 Figure 1: overlapping windows of ``block_ps`` whose starts are
``stride_ps`` apart; in each block the MSD is taken from the block's first frame,
``MSD_b(t) = < |r_mu(t0 + t) - r_mu(t0)|^2 >`` over the molecules of a type; each block's D is the
least-squares slope / 6 after the ballistic ``ballistic_ps``; D is the mean over blocks and its
error the standard deviation over blocks divided by sqrt(number of blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from potlab.analysis.diffusion import A2_PER_FS_TO_CM2_PER_S, fit_slope
from potlab.analysis.trajio import Trajectory
from potlab.analysis.unwrap import unwrap_positions


def find_molecules(atoms: Atoms, bond_scale: float = 1.2) -> tuple[np.ndarray, list[str]]:
    """Molecule index of every atom [atoms] and the formula of each molecule [molecules]."""
    from potlab.reference.generate.molecules import molecule_labels

    labels = molecule_labels(atoms, bond_scale)
    syms = np.asarray(atoms.get_chemical_symbols())
    formulas = [Atoms(syms[labels == m].tolist()).get_chemical_formula(mode="hill")
                for m in range(labels.max() + 1)]
    return labels, formulas


@dataclass
class MoleculeDiffusion:
    """COM diffusion of one molecule type: D (cm^2/s) +- standard error over blocks."""

    formula: str
    n_molecules: int
    t_ps: np.ndarray  # lag times of a block, ps
    msd_A2: np.ndarray  # block-averaged COM MSD, A^2
    msd_err_A2: np.ndarray  # standard error over blocks, A^2
    diffusivity_cm2_s: float
    diffusivity_err_cm2_s: float
    block_diffusivities_cm2_s: np.ndarray

    @property
    def n_blocks(self) -> int:
        return len(self.block_diffusivities_cm2_s)

    def as_dict(self) -> dict:
        return {"formula": self.formula, "n_molecules": self.n_molecules,
                "n_blocks": self.n_blocks, "diffusivity_cm2_s": self.diffusivity_cm2_s,
                "diffusivity_err_cm2_s": self.diffusivity_err_cm2_s}


def com_diffusion(traj: Trajectory, *, block_ps: float = 100.0, stride_ps: float = 10.0,
                  ballistic_ps: float = 10.0, skip_ps: float = 0.0, bond_scale: float = 1.2,
                  molecules: tuple[np.ndarray, list[str]] | None = None,
                  ) -> dict[str, MoleculeDiffusion]:
    """Block-averaged COM MSD and D for every molecule type (formula -> result).

    Defaults are seed 003's (100 ps blocks every 10 ps, 10 ps ballistic part removed); the
    trajectory after ``skip_ps`` must hold at least one whole block.
    """
    dt = traj.frame_interval_fs()
    skip = round(skip_ps * 1000 / dt)
    block = round(block_ps * 1000 / dt) + 1
    stride = max(1, round(stride_ps * 1000 / dt))
    pos = traj.positions[skip:]
    if pos.shape[0] < block:
        raise ValueError(f"{traj.source}: {pos.shape[0]} frames after skip_ps={skip_ps}, "
                         f"one {block_ps} ps block needs {block}")
    x = pos if traj.unwrapped else unwrap_positions(pos, traj.cells[skip:], traj.pbc)
    if molecules is None:
        atoms0 = Atoms(traj.symbols, positions=traj.positions[skip], cell=traj.cells[skip],
                       pbc=traj.pbc)
        molecules = find_molecules(atoms0, bond_scale)
    labels, formulas = molecules
    m = np.asarray(traj.masses, dtype=float)
    n_mol = labels.max() + 1
    onehot = np.zeros((traj.n_atoms, n_mol))
    onehot[np.arange(traj.n_atoms), labels] = m
    onehot /= onehot.sum(axis=0, keepdims=True)
    com = np.einsum("tni,nm->tmi", x, onehot)  # [T, molecules, 3]
    starts = np.arange(0, com.shape[0] - block + 1, stride)
    t_fs = np.arange(block) * dt
    fit = t_fs >= ballistic_ps * 1000
    out = {}
    for formula in sorted(set(formulas)):
        sel = np.flatnonzero(np.asarray(formulas) == formula)
        curves = np.stack([((com[s:s + block, sel] - com[s, sel]) ** 2).sum(-1).mean(-1)
                           for s in starts])  # [blocks, lags]
        d_blocks = np.array([fit_slope(t_fs[fit], c[fit])[0] for c in curves]) / 6.0
        d_blocks *= A2_PER_FS_TO_CM2_PER_S
        nb = len(starts)
        err = d_blocks.std(ddof=1) / np.sqrt(nb) if nb > 1 else float("nan")
        out[formula] = MoleculeDiffusion(
            formula=formula, n_molecules=len(sel), t_ps=t_fs / 1000, msd_A2=curves.mean(0),
            msd_err_A2=curves.std(0, ddof=1) / np.sqrt(nb) if nb > 1 else np.zeros(block),
            diffusivity_cm2_s=float(d_blocks.mean()), diffusivity_err_cm2_s=float(err),
            block_diffusivities_cm2_s=d_blocks)
    return out


def weighted_diffusivity(results: dict[str, MoleculeDiffusion],
                         formulas: list[str] | None = None) -> float:
    """Molecule-number-weighted mean D (cm^2/s) over ``formulas`` (default: all types), the
    single number seed 003 puts into its quality score."""
    keys = list(results) if formulas is None else formulas
    w = np.array([results[k].n_molecules for k in keys], dtype=float)
    d = np.array([results[k].diffusivity_cm2_s for k in keys])
    return float((w * d).sum() / w.sum())
