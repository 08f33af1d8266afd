"""A trained potential: E = sum_i (E0[Z_i] + shift + scale * model_i); F = -dE/dR; stress
from the strain derivative. Save/load, the ASE calculator and committees live here."""

from potlab.potential.calculator import PotentialCalculator
from potlab.potential.committee import Committee, CommitteeCalculator, committee_statistics
from potlab.potential.loading import load, load_committee
from potlab.potential.potential import Potential, predict, predict_graphs

__all__ = [
    "Committee",
    "CommitteeCalculator",
    "Potential",
    "PotentialCalculator",
    "committee_statistics",
    "load",
    "load_committee",
    "predict",
    "predict_graphs",
]
