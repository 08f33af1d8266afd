"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed
over it. A kill never leaves a torn file: readers see the old version or the new one.
Everything potlab writes that a resumed run reads back goes through here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (ASE,
    torch.export); on success it replaces ``path``, on an exception it is removed.
    ``suffix`` lets writers that check the extension see the one they expect."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """``open(path, mode)`` that only replaces ``path`` once the block has finished."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh
        fh.flush()


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)
