"""Atomic checkpoint writes: temp file, fsync, rename. A kill never leaves a torn file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from potlab.atomic import atomic_open, write_text_atomic

__all__ = ["load_training_checkpoint", "save_atomic", "write_text_atomic"]


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A trainer checkpoint (``checkpoints/last.pt``: tensors, optimizer, scheduler and EMA
    state, plain numbers), read with ``weights_only=True``: no pickled code runs."""
    return torch.load(path, map_location="cpu", weights_only=True)
