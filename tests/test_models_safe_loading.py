"""Importing potlab's models (e3nn, mace) leaves torch's safe loading as it was: the e3nn
workaround (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) is scoped to e3nn's import."""

from __future__ import annotations

import os
import subprocess
import sys

_CHECK = """
import os, io, pickle, torch
from potlab.models import build_model, available
assert {"mace", "so3krates"} <= set(available())
from conftest import tiny_params
build_model("mace", tiny_params("mace"), [1, 8], 10.0)   # e3nn's constants did load
build_model("so3krates", tiny_params("so3krates"), [1, 8], 10.0)
assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ, "the workaround leaked"
buf = io.BytesIO()
torch.save(torch.nn.Linear(2, 2), buf)        # a pickled module, not plain weights
buf.seek(0)
try:
    torch.load(buf)                           # torch's default: weights_only=True
except pickle.UnpicklingError:
    print("refused")
"""


def test_importing_the_models_keeps_torch_safe_loading():
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-c", _CHECK], env=env, capture_output=True,
                          text=True, check=False, cwd=os.path.dirname(__file__))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"
