"""Crystal structures from CIF: supercells and ordering of partially occupied sites.

Experimental CIFs (e.g. OBELiX) carry fractional occupancies; an MD cell needs whole
atoms. Two orderings:

- ``"random"`` (default): a seeded random ordering in the supercell. Fully occupied
  sites are kept; for each element, ``round(sum of its occupancies)`` atoms are drawn
  without replacement among its partially occupied sites, with probability proportional
  to occupancy (so composition is kept to the nearest atom; the rest become vacancies).
- ``"pymatgen"``: pymatgen's ``OrderDisorderedStructureTransformation`` (Ewald energy
  ranking over oxidation states guessed by pymatgen); exhaustive, for small cells only.
"""

from __future__ import annotations

import os
import warnings
from typing import Literal

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from potlab.data.errors import DataError


class CrystalParams(BaseModel):
    """``supercell`` repetitions (a, b, c); ``order`` method; ``structures`` orderings to
    return (different seeds for "random", the lowest-Ewald ones for "pymatgen")."""

    model_config = ConfigDict(extra="forbid")
    supercell: tuple[int, int, int] = (1, 1, 1)
    order: Literal["random", "pymatgen"] = "random"
    structures: int = Field(1, ge=1)
    seed: int = 0


def read_cif(path: str | os.PathLike[str]):
    """The pymatgen ``Structure`` of a CIF; a DataError naming the file if unreadable."""
    from pymatgen.core import Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(str(path))
    except Exception as exc:
        raise DataError(path, f"cannot read CIF: {exc}") from exc


def crystal_structures(path: str | os.PathLike[str], params: CrystalParams | None = None
                       ) -> list[Atoms]:
    """Ordered periodic ``Atoms`` from the CIF at ``path`` (``params.structures`` of
    them), with ``info["config_type"]="crystal"`` and ``info["source_cif"]``."""
    from pymatgen.io.ase import AseAtomsAdaptor

    p = params or CrystalParams()
    structure = read_cif(path)
    structure.make_supercell(list(p.supercell))
    if structure.is_ordered:
        ordered = [structure] * 1
    elif p.order == "random":
        ordered = [random_ordering(structure, p.seed + k) for k in range(p.structures)]
    else:
        ordered = _pymatgen_orderings(structure, p.structures, path)
    out = []
    for s in ordered:
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
        atoms.info.update(config_type="crystal", source_cif=os.path.basename(str(path)))
        out.append(atoms)
    return out


def random_ordering(structure, seed: int = 0):
    """A seeded random ordering of a disordered pymatgen ``Structure`` (see the module
    docstring); returns a new ordered ``Structure``."""
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    taken = np.zeros(len(structure), dtype=bool)
    species: list[str | None] = [None] * len(structure)
    for i, site in enumerate(structure):
        occ = site.species.as_dict()
        if len(occ) == 1 and next(iter(occ.values())) >= 0.999:
            species[i], taken[i] = next(iter(occ)), True
    elements = sorted({el for site in structure for el in site.species.as_dict()})
    for el in elements:
        occ = np.array([0.0 if taken[i] else site.species.as_dict().get(el, 0.0)
                        for i, site in enumerate(structure)])
        n = round(sum(site.species.as_dict().get(el, 0.0) for site in structure)
                  - sum(1 for s in species if s == el))
        candidates = np.flatnonzero(occ > 0)
        n = max(0, min(n, len(candidates)))
        if n == 0:
            continue
        chosen = rng.choice(candidates, size=n, replace=False,
                            p=occ[candidates] / occ[candidates].sum())
        for i in chosen:
            species[i], taken[i] = el, True
    keep = [i for i in range(len(structure)) if species[i] is not None]
    return Structure(structure.lattice, [species[i] for i in keep],
                     [structure[i].frac_coords for i in keep])


def _pymatgen_orderings(structure, n: int, path):
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation,
    )

    s = structure.copy()
    try:
        s.add_oxidation_state_by_guess()
    except Exception as exc:
        raise DataError(path, f"pymatgen could not guess oxidation states: {exc}") from exc
    result = OrderDisorderedStructureTransformation(algo=2).apply_transformation(
        s, return_ranked_list=n)
    ranked = result if isinstance(result, list) else [{"structure": result}]
    out = []
    for item in ranked[:n]:
        st = item["structure"]
        st.remove_oxidation_states()
        out.append(st)
    return out
