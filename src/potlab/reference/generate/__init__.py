"""Configuration generators: each a small function with typed (pydantic) parameters that
returns a list of ``ase.Atoms`` ready to label.

- :func:`rattle` / :func:`augment`: displaced copies (Gaussian or uniform; seed 002's
  +-0.05 A uniform augmentation);
- :func:`isolated_atoms`, :func:`isolated_molecules`: one atom per element; molecules
  cut whole from a periodic frame;
- :func:`volume_scan`: rigid-molecule isotropic expansion/compression (seed 003);
- :func:`liquid_box`: molecular liquids from SMILES at a target density;
- :func:`crystal_structures`: CIF -> supercell -> ordered partial occupancies;
- :func:`md_sampling`: reference MD (ramp from 100 K, NVT at several temperatures,
  repeats, every k-th frame) with any labeller's calculator.
"""

from __future__ import annotations

from potlab.reference.generate.crystal import CrystalParams, crystal_structures, random_ordering
from potlab.reference.generate.isolated import IsolatedParams, isolated_atoms, isolated_molecules
from potlab.reference.generate.liquid import LiquidParams, conformer, liquid_box
from potlab.reference.generate.molecules import molecule_indices, whole_molecules
from potlab.reference.generate.rattle import RattleParams, augment, rattle
from potlab.reference.generate.volume_scan import VolumeScanParams, density, volume_scan

__all__ = [
    "CrystalParams",
    "IsolatedParams",
    "LiquidParams",
    "RattleParams",
    "VolumeScanParams",
    "augment",
    "conformer",
    "crystal_structures",
    "density",
    "isolated_atoms",
    "isolated_molecules",
    "liquid_box",
    "molecule_indices",
    "random_ordering",
    "rattle",
    "volume_scan",
    "whole_molecules",
]
