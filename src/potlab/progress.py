"""The one place where library code shows progress: tqdm bars, silenced by POTLAB_QUIET=1.

Library modules never print; they log through :mod:`logging` and show progress through
:func:`progress`, so the CLI and tests decide what a person sees.
"""

from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm

log = logging.getLogger("potlab")


def quiet() -> bool:
    return os.environ.get("POTLAB_QUIET", "0") not in ("", "0", "false", "False")


def progress(iterable=None, **kwargs):
    """A tqdm progress bar on stderr, disabled when POTLAB_QUIET=1 or stderr is not a tty
    and ``POTLAB_PROGRESS`` is not set."""
    disable = quiet() or not (sys.stderr.isatty() or os.environ.get("POTLAB_PROGRESS"))
    kwargs.setdefault("disable", disable)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)
