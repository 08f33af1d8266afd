"""Atomic checkpoint writes: temp file, fsync, rename. A kill never leaves a torn file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from potlab.atomic import atomic_open, write_text_atomic

__all__ = ["load_checkpoint", "save_atomic", "write_text_atomic"]


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)
