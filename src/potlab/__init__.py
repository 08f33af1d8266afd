"""potlab: train machine-learning interatomic potentials and judge them by their MD.

The public surface is small: ``potlab.load(path)`` returns a trained
:class:`~potlab.potential.Potential`; ``potential.calculator()`` is an ASE calculator.
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, *, device: str = "cpu", dtype: str | None = None):
    """Load a saved potential (``model.pt`` or a checkpoint) and return a Potential (a
    committee file gives a Committee). ``device``: cpu, cuda, cuda:N or auto."""
    from potlab.potential import load as _load

    return _load(path, device=device, dtype=dtype)


__all__ = ["__version__", "load"]
