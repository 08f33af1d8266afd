"""Unwrapping positions across periodic boundaries (fractional-coordinate jumps).

Between consecutive frames an atom moves less than half a cell vector, so a jump of the
fractional coordinate by about +-1 along a periodic direction is a boundary crossing. The
unwrapped path adds up the minimum-image fractional steps, each converted to Angstrom with the
cell of the frame it ends in (NPT cells allowed), as pymatgen's DiffusionAnalyzer does.
"""

from __future__ import annotations

import numpy as np


def unwrap_positions(positions: np.ndarray, cells: np.ndarray,
                     pbc: np.ndarray | bool = True) -> np.ndarray:
    """Continuous Cartesian positions from wrapped ones.

    Parameters
    ----------
    positions: Angstrom, [frames, atoms, 3]
    cells: Angstrom, [frames, 3, 3] (rows are cell vectors) or one [3, 3] cell
    pbc: periodic directions ([3] bool or one bool); non-periodic directions are left alone

    Returns the unwrapped positions, Angstrom, [frames, atoms, 3]; frame 0 is unchanged.
    """
    pos = np.asarray(positions, dtype=float)
    cells = np.asarray(cells, dtype=float)
    if cells.ndim == 2:
        cells = np.broadcast_to(cells, (pos.shape[0], 3, 3))
    per = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if not per.any() or pos.shape[0] < 2:
        return pos.copy()
    inv = np.linalg.inv(cells)  # [frames, 3, 3]
    frac = np.einsum("tni,tij->tnj", pos, inv)
    dfrac = np.diff(frac, axis=0)
    dfrac[..., per] -= np.round(dfrac[..., per])
    dcart = np.einsum("tni,tij->tnj", dfrac, cells[1:])
    out = np.empty_like(pos)
    out[0] = pos[0]
    np.cumsum(dcart, axis=0, out=out[1:])
    out[1:] += pos[0]
    return out
