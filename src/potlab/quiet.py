"""Third-party noise out of a user's view: warnings and stray prints of the libraries potlab
drives (CHGNet prints its parameter count and device, torch warns about scalar conversion)
go to the ``potlab.thirdparty`` logger at DEBUG level (``potlab -vv`` shows them), so a
normal run keeps stdout and stderr for potlab's own output."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

log = logging.getLogger("potlab.thirdparty")


def log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A ``warnings.showwarning`` replacement that logs at DEBUG instead of printing."""
    log.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)


@contextlib.contextmanager
def third_party_output() -> Iterator[None]:
    """Inside the block, warnings are logged at DEBUG (not printed) and anything printed to
    stdout is logged at DEBUG line by line."""
    buffer = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
        warnings.simplefilter("always")
        warnings.showwarning = log_warning
        try:
            yield
        finally:
            for line in buffer.getvalue().splitlines():
                if line.strip():
                    log.debug("stdout: %s", line)
