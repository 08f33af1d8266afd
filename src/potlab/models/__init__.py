"""Model registry: one module per architecture, each registered by name.

A model is a ``torch.nn.Module`` that maps a :class:`~potlab.graph.GraphBatch` to
per-atom energies ``[n_atoms]`` (eV, before the per-element E0 and the data scale and
shift that :class:`~potlab.potential.Potential` adds). Forces and stress never come from
the model. Adding an architecture is one new module in this package that decorates its
class with :func:`register`; the package imports every module in it.
"""

from potlab.models.registry import available, build_model, get_model_class, register

__all__ = ["available", "build_model", "get_model_class", "register"]
