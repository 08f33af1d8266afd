"""Shared fixtures: small real structures and tiny model settings for fast physics tests."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("POTLAB_QUIET", "1")
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import potlab  # noqa: E402

LI3PS4 = Path(potlab.__file__).parent / "studies" / "data" / "li3ps4"

# Small settings per architecture so the shared physics suite runs in seconds; an
# architecture not listed here is tested with its defaults.
TINY = {
    "schnet": {"num_features": 16, "num_filters": 16, "num_interactions": 2, "num_rbf": 12},
    "mace": {"num_channels": 8, "max_L": 1, "correlation": 2, "num_interactions": 2,
             "radial_mlp": [16, 16], "mlp_irreps": "8x0e"},
}


def tiny_params(name: str, cutoff: float = 4.0) -> dict:
    return {"cutoff": cutoff, **TINY.get(name, {})}


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
