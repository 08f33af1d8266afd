"""Volume scans (seed 003 sec. 3.1): isotropic expansion and compression of a periodic
molecular frame with every molecule rigid.

Only the molecular centres of mass move (with the cell, at fixed fractional
coordinates); bond lengths and all intramolecular distances are unchanged, only the
intermolecular separation varies. Densities are in g/cm^3.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, model_validator

from potlab.errors import InputError
from potlab.md.monitors import density_g_cm3 as density  # the one g/cm^3 helper
from potlab.reference.generate.molecules import BOND_SCALE, centre_of_mass, whole_molecules


class VolumeScanParams(BaseModel):
    """Either ``densities`` (g/cm^3, explicit) or ``min_density``/``max_density`` with
    ``points`` evenly spaced values, or ``scales`` (linear cell factors)."""

    model_config = ConfigDict(extra="forbid")
    densities: list[float] | None = None
    scales: list[float] | None = None
    min_density: float | None = Field(None, gt=0)
    max_density: float | None = Field(None, gt=0)
    points: int = Field(7, ge=1)
    bond_scale: float = Field(BOND_SCALE, gt=0)

    @model_validator(mode="after")
    def _one_range(self):
        given = [self.densities is not None, self.scales is not None,
                 self.min_density is not None or self.max_density is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of densities, scales or min_density/max_density")
        if given[2] and (self.min_density is None or self.max_density is None):
            raise ValueError("min_density and max_density go together")
        return self

    def linear_scales(self, rho0: float) -> list[float]:
        if self.scales is not None:
            return list(self.scales)
        rhos = self.densities if self.densities is not None else list(
            np.linspace(self.min_density, self.max_density, self.points))
        return [float((rho0 / r) ** (1.0 / 3.0)) for r in rhos]


def volume_scan(frame: Atoms, params: VolumeScanParams) -> list[Atoms]:
    """Copies of the periodic ``frame`` at each density/scale, molecules rigid.

    Each copy has ``info["config_type"] = "volume_scan"``, ``info["density"]`` (g/cm^3)
    and ``info["volume_scale"]`` (linear factor).
    """
    if not frame.pbc.all():
        raise InputError(f"volume_scan needs a periodic frame (pbc on all axes), got pbc="
                         f"{frame.pbc.tolist()}")
    molecules = whole_molecules(frame, params.bond_scale)
    cell = frame.cell.array
    frac_com = [np.linalg.solve(cell.T, centre_of_mass(frame, idx, pos))
                for idx, pos in molecules]
    out = []
    for s in params.linear_scales(density(frame)):
        new_cell = cell * s
        positions = np.empty_like(frame.positions)
        for (idx, pos), f in zip(molecules, frac_com):
            com = centre_of_mass(frame, idx, pos)
            positions[idx] = pos - com + f @ new_cell
        copy = Atoms(frame.numbers, positions, cell=new_cell, pbc=True)
        copy.info.update(config_type="volume_scan", volume_scale=float(s), density=density(copy))
        out.append(copy)
    return out
