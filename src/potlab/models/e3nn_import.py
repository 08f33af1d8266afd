"""Importing e3nn under torch >= 2.6 without weakening torch's safe loading.

e3nn 0.4.4 (mace-torch's pin) reads its ``constants.pt`` with a bare ``torch.load`` at
import time, which torch >= 2.6 refuses under its ``weights_only=True`` default. The
workaround, ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, is set only while e3nn (and mace,
which imports it) is imported and restored afterwards, so a user's own ``torch.load``
calls keep torch's safe default.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import warnings
from collections.abc import Iterator

_FLAG = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


@contextlib.contextmanager
def e3nn_constants_loadable() -> Iterator[None]:
    """Set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` inside the block only."""
    before = os.environ.get(_FLAG)
    os.environ[_FLAG] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_FLAG, None)
        else:
            os.environ[_FLAG] = before


@functools.cache
def import_mace_and_e3nn() -> None:
    """Import ``mace.modules`` and ``e3nn.o3`` once, quietly: mace prints a notice about
    optional cuequivariance to stdout at import (``potlab eval --json`` prints one JSON
    object there), and torch warns about the forced non-weights-only load."""
    with (e3nn_constants_loadable(), contextlib.redirect_stdout(io.StringIO()),
          warnings.catch_warnings()):
        warnings.simplefilter("ignore")
        import mace.modules  # noqa: F401  (mace before e3nn, as mace expects)
        from e3nn import o3  # noqa: F401
