"""Diffusion paths: occupancy density of one species on a grid in fractional coordinates.

Every frame's ``species`` positions are wrapped into the cell (fractional coordinates mod 1) and
counted on an ``nx x ny x nz`` grid (default: about ``spacing`` Angstrom per voxel along each
cell vector). The density is the mean number of atoms per voxel per frame divided by the voxel
volume (atoms/A^3); it can be smoothed with a periodic Gaussian of ``smooth`` voxels.

Overlap of two densities on the same grid (documented choice): the Bhattacharyya coefficient
``BC = sum_v sqrt(p_v q_v)`` of the two grids normalised to unit sum; it is 1 for identical
densities, 0 for disjoint ones, and symmetric.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from ase import Atoms


@dataclass
class Occupancy:
    """Occupancy density: ``density`` [nx, ny, nz] in atoms/A^3 on the cell ``cell`` [3, 3]."""

    density: np.ndarray
    cell: np.ndarray
    species: str
    n_frames: int
    atoms: Atoms  # the first frame, for the cube file

    def normalised(self) -> np.ndarray:
        """The grid scaled to unit sum (a probability per voxel)."""
        total = self.density.sum()
        return self.density / total if total > 0 else self.density


def grid_shape(cell: np.ndarray, spacing: float) -> tuple[int, int, int]:
    """Voxels along each cell vector so that each is about ``spacing`` Angstrom long."""
    lengths = np.linalg.norm(np.asarray(cell), axis=1)
    return tuple(max(1, round(float(v) / spacing)) for v in lengths)


def occupancy(frames: list[Atoms], species: str, spacing: float = 0.25,
              shape: tuple[int, int, int] | None = None, smooth: float = 0.0) -> Occupancy:
    """Occupancy density of ``species`` over ``frames`` (periodic cell, atoms/A^3).

    ``shape`` overrides ``spacing``; ``smooth`` is the Gaussian sigma in voxels (0 = none).
    """
    if not frames:
        raise ValueError("occupancy: no frames")
    cell = frames[0].cell.array
    if abs(np.linalg.det(cell)) < 1e-9:
        raise ValueError("occupancy: frame 0: field 'cell': needs a periodic cell")
    shape = shape or grid_shape(cell, spacing)
    counts = np.zeros(shape)
    for k, atoms in enumerate(frames):
        sym = np.asarray(atoms.get_chemical_symbols())
        sel = sym == species
        if not sel.any():
            raise ValueError(f"occupancy: frame {k}: field 'symbols': no {species} atoms")
        frac = atoms.cell.scaled_positions(atoms.positions[sel]) % 1.0
        idx = np.minimum((frac * shape).astype(int), np.array(shape) - 1)
        np.add.at(counts, (idx[:, 0], idx[:, 1], idx[:, 2]), 1.0)
    if smooth > 0:
        from scipy.ndimage import gaussian_filter

        counts = gaussian_filter(counts, sigma=smooth, mode="wrap")
    voxel = abs(np.linalg.det(cell)) / np.prod(shape)
    return Occupancy(density=counts / len(frames) / voxel, cell=np.array(cell), species=species,
                     n_frames=len(frames), atoms=frames[0].copy())


def overlap(a: Occupancy | np.ndarray, b: Occupancy | np.ndarray) -> float:
    """Bhattacharyya coefficient of two occupancy grids of the same shape, in [0, 1]."""
    pa = a.normalised() if isinstance(a, Occupancy) else np.asarray(a) / np.sum(a)
    pb = b.normalised() if isinstance(b, Occupancy) else np.asarray(b) / np.sum(b)
    if pa.shape != pb.shape:
        raise ValueError(f"overlap: grids differ in shape, {pa.shape} vs {pb.shape}")
    return float(np.sqrt(np.clip(pa, 0, None) * np.clip(pb, 0, None)).sum())


def write_cube(occ: Occupancy, path: str | os.PathLike[str]) -> None:
    """Write the density (atoms/A^3) as a Gaussian cube file with the first frame's atoms."""
    from ase.io.cube import write_cube as ase_write_cube

    with open(path, "w") as fh:
        ase_write_cube(fh, occ.atoms, data=occ.density)
