"""A training run directory: atomic checkpoint writes (temp file, fsync, rename; a kill
never leaves a torn file), the check that the directory takes files, and the check that a
resumed run has the data and model sections it was made with."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import yaml

from potlab.atomic import atomic_open, write_text_atomic
from potlab.train.config import ConfigError

__all__ = ["check_resume_config", "load_training_checkpoint", "prepare_run_directory",
           "save_atomic", "write_text_atomic"]


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A trainer checkpoint (``checkpoints/last.pt``: tensors, optimizer, scheduler and EMA
    state, plain numbers), read with ``weights_only=True``: no pickled code runs."""
    return torch.load(path, map_location="cpu", weights_only=True)


def prepare_run_directory(out: Path) -> None:
    """Create ``out`` and check it takes files; a ConfigError naming it when it cannot."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".potlab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"out: cannot write the run directory {out}: "
                          f"{err.strerror or err}") from None


_PATH_KEYS = ("train", "valid", "test", "split_file", "init_from", "init_model")


def _same_section(old: Any, new: Any) -> bool:
    """Equal, or equal but for paths naming the same existing file (an absolute path saved
    by a run that a rerun names relative to its working directory, or the reverse)."""
    if old == new:
        return True
    if not isinstance(old, dict) or not isinstance(new, dict) or set(old) != set(new):
        return False
    for k in old:
        a, b = old[k], new[k]
        if a == b:
            continue
        if not (k in _PATH_KEYS and isinstance(a, str) and isinstance(b, str)
                and os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)):
            return False
    return True


def check_resume_config(out: Path, cfg) -> None:
    """A run directory made with other ``data`` or ``model`` sections is not resumed."""
    saved = Path(out) / "config.yaml"
    if not saved.exists():
        return
    old = yaml.safe_load(saved.read_text())
    new = cfg.model_dump(mode="json")
    for section in ("data", "model"):
        if not _same_section(old.get(section), new.get(section)):
            raise ConfigError(
                f"{saved}: the run directory was made with a different '{section}' section; "
                f"use a new 'out' directory or restore the config"
            )
