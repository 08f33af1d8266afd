"""Molecular liquid boxes from SMILES at a target density and composition.

Each species gets one RDKit conformer (ETKDG embedding, MMFF relaxation, seeded);
molecules are then placed one by one at random positions and orientations in a cubic
box sized for the target density, and a placement is rejected when any of its atoms
comes closer than ``min_distance`` (A, minimum image) to an atom already placed. E.g.
seed 003's EC:EMC 3:7 liquid: ``smiles=["C1COC(=O)O1", "CCOC(=O)OC"], counts=[12, 28]``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from potlab.errors import InputError
from potlab.md.monitors import AMU_PER_A3_TO_G_CM3, density_g_cm3


class LiquidParams(BaseModel):
    """``smiles`` and ``counts`` (molecules of each), ``density`` (g/cm^3),
    ``min_distance`` between atoms of different molecules (A), ``max_attempts`` random
    placements per molecule before giving up, ``seed``."""

    model_config = ConfigDict(extra="forbid")
    smiles: list[str] = Field(min_length=1)
    counts: list[int] = Field(min_length=1)
    density: float = Field(gt=0, description="g/cm^3")
    min_distance: float = Field(1.6, gt=0, description="A")
    max_attempts: int = Field(20000, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _same_length(self):
        if len(self.smiles) != len(self.counts):
            raise ValueError(f"{len(self.smiles)} smiles but {len(self.counts)} counts")
        if any(c < 0 for c in self.counts) or sum(self.counts) == 0:
            raise ValueError("counts must be >= 0 with at least one molecule")
        return self


def conformer(smiles: str, seed: int = 0) -> Atoms:
    """One 3D conformer of ``smiles`` with hydrogens (A), centred on its centroid."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise InputError(f"invalid SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(mol, randomSeed=seed) != 0:
        raise InputError(f"RDKit could not embed {smiles!r} in 3D")
    AllChem.MMFFOptimizeMolecule(mol)
    pos = mol.GetConformer().GetPositions()
    atoms = Atoms(numbers=[a.GetAtomicNum() for a in mol.GetAtoms()], positions=pos)
    atoms.positions -= atoms.positions.mean(axis=0)
    return atoms


def liquid_box(params: LiquidParams) -> Atoms:
    """A cubic periodic box of the requested composition at ``params.density``.

    Raises InputError (bad parameters) when a molecule cannot be placed within
    ``max_attempts``: the density is too high for ``min_distance`` (lower either). ``info``: ``config_type="liquid"``, ``density``
    (g/cm^3), ``smiles``, ``counts``.
    """
    rng = np.random.default_rng(params.seed)
    templates = [conformer(s, params.seed) for s in params.smiles]
    mass = sum(c * t.get_masses().sum() for c, t in zip(params.counts, templates))
    edge = (mass * AMU_PER_A3_TO_G_CM3 / params.density) ** (1.0 / 3.0)
    order = [k for k, c in enumerate(params.counts) for _ in range(c)]
    order.sort(key=lambda k: -len(templates[k]))  # big molecules first
    numbers: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    tree = None  # periodic k-d tree of the atoms placed so far (wrapped into the box)
    batch = 256  # trial placements evaluated together
    for k in order:
        tpl = templates[k]
        accepted = None
        for start in range(0, params.max_attempts, batch):
            n = min(batch, params.max_attempts - start)
            rots = Rotation.random(n, random_state=rng.integers(2**32)).as_matrix()
            trials = np.einsum("bij,aj->bai", rots, tpl.positions) + rng.uniform(0, edge, (n, 1, 3))
            if tree is None:
                accepted = trials[0]
                break
            d, _ = tree.query(np.mod(trials, edge).reshape(-1, 3), k=1,
                              distance_upper_bound=params.min_distance)
            free = ~np.isfinite(d).reshape(n, -1).any(axis=1)
            if free.any():
                accepted = trials[np.argmax(free)]
                break
        if accepted is None:
            raise InputError(
                f"liquid box: could not place molecule {len(numbers) + 1} ({params.smiles[k]}) "
                f"of {len(order)} after {params.max_attempts} attempts at {params.density:g} "
                f"g/cm^3 (box edge {edge:.2f} A) with min_distance {params.min_distance:g} A: "
                f"the density is too high to pack; lower --density or --min-distance")
        positions.append(accepted)
        numbers.append(tpl.numbers)
        tree = cKDTree(np.mod(np.vstack(positions), edge), boxsize=edge)
    atoms = Atoms(numbers=np.concatenate(numbers), positions=np.vstack(positions),
                  cell=np.eye(3) * edge, pbc=True)
    atoms.info.update(config_type="liquid", density=density_g_cm3(atoms),
                      smiles=" ".join(params.smiles), counts=" ".join(map(str, params.counts)))
    return atoms
