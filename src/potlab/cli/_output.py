"""How a command reports a result: one JSON object on stdout with ``--json``, else the
human-readable lines. Every command group uses this one helper."""

from __future__ import annotations

import json

import numpy as np


def _plain(value):
    """numpy scalars and arrays as JSON-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def emit(args, result: dict, lines: list[str], indent: int | None = None) -> int:
    """Print ``result`` as JSON when ``args.json`` is set, else ``lines``; returns 0."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=indent, default=_plain))
    else:
        print("\n".join(lines))
    return 0
