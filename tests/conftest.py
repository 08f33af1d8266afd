"""Shared fixtures: small real structures and tiny model settings for fast physics tests."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("POTLAB_QUIET", "1")

import numpy as np
import pytest
import torch

import potlab

LI3PS4 = Path(potlab.__file__).parent / "studies" / "data" / "li3ps4"

def tiny_params(name: str, cutoff: float = 4.0) -> dict:
    """Each architecture's "tiny" preset (small, so the shared physics suite runs in
    seconds) with a short cutoff; an architecture without one is tested at its defaults."""
    from potlab.models import get_model_class

    presets = getattr(get_model_class(name), "presets", {})
    return {**({"preset": "tiny"} if "tiny" in presets else {}), "cutoff": cutoff}


@pytest.fixture(scope="session")
def li3ps4_frames():
    from potlab.data import read_frames

    return read_frames(LI3PS4 / "Li3PS4-sample-train.xyz", energy_key="energy", forces_key="forces")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
