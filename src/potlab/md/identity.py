"""What identifies an MD run for the rerun check: the structure it started from and the
calculator it ran with (class and weights hash of a potlab potential, or an ASE
calculator's ``parameters``)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from ase import Atoms


def structure_fingerprint(atoms: Atoms) -> str:
    """16 hex characters identifying numbers, positions, cell and pbc of ``atoms``."""
    h = hashlib.sha256()
    for arr in (atoms.numbers.astype(np.int64), np.asarray(atoms.positions, dtype=np.float64),
                np.asarray(atoms.cell.array, dtype=np.float64), np.asarray(atoms.pbc, dtype=bool)):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def module_fingerprint(module) -> str:
    """16 hex characters identifying the weights and buffers of a torch module."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def calculator_fingerprint(calc) -> dict[str, Any]:
    """What identifies a calculator for the rerun check: its class and either the
    potential's architecture, dtype and weights hash, or the ASE ``parameters``."""
    base = getattr(calc, "base", calc)  # a SteeredSpring wraps the real calculator
    cls = type(base)
    out: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    import torch

    module = None
    for name in ("potential", "committee", "model"):
        if isinstance(getattr(base, name, None), torch.nn.Module):
            module = getattr(base, name)
            break
    if module is None and isinstance(base, torch.nn.Module):
        module = base  # a Potential itself (batched engine)
    if module is not None:
        out.update(model=str(getattr(module, "model_name", "")),
                   dtype=str(getattr(module, "dtype", "")), weights=module_fingerprint(module))
    else:
        params = getattr(base, "parameters", {}) or {}
        out["parameters"] = {str(k): _plain(v) for k, v in sorted(dict(params).items())}
    return out


def _plain(value: Any) -> Any:
    """JSON-able data as itself; any other object by its type name (a model object's repr
    holds its memory address, which differs between runs)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.size <= 64:
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return f"<{type(value).__module__}.{type(value).__qualname__}>"
