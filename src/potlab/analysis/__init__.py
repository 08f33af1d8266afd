"""Analysis of potentials and trajectories. Each function states its units."""

# Trajectory analysis (helper "analysis"): the verbs a user reaches for first.
from potlab.analysis.conductivity import arrhenius_fit, extrapolate_conductivity, nernst_einstein
from potlab.analysis.density import kl_divergence
from potlab.analysis.diffusion import diffusivity, msd_fft
from potlab.analysis.paths import occupancy, overlap
from potlab.analysis.quality import quality_score
from potlab.analysis.rdf import RDF, rdf, rdf_error
from potlab.analysis.trajio import read_trajectory

__all__ = [
    "RDF",
    "arrhenius_fit",
    "diffusivity",
    "extrapolate_conductivity",
    "kl_divergence",
    "msd_fft",
    "nernst_einstein",
    "occupancy",
    "overlap",
    "quality_score",
    "rdf",
    "rdf_error",
    "read_trajectory",
]
