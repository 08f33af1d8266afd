"""A trained potential: E = sum_i (E0[Z_i] + shift + scale * model_i); F = -dE/dR; stress
from the strain derivative. Save/load and the ASE calculator live here."""

from potlab.potential.calculator import PotentialCalculator
from potlab.potential.potential import Potential, load, predict, predict_graphs

__all__ = ["Potential", "PotentialCalculator", "load", "predict", "predict_graphs"]
