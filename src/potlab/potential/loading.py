"""Reading potential files back: one entry point for a potential, a training checkpoint or a
committee, each recognised by its format tag; anything else is a :class:`DataError` naming
the file (never a torch unpickling traceback).

Formats: ``potlab-potential/1`` (``{"spec", "state_dict", "metadata"}``, see
:meth:`Potential.save`), a training checkpoint (the same under ``"potential"``) and
``potlab-committee/1`` (``{"format", "members": [...], "metadata"}``). Files are read with
``torch.load(weights_only=True)``: loading a potential never runs pickled code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from potlab.data.errors import DataError
from potlab.devices import resolve_device
from potlab.potential.committee import FORMAT as COMMITTEE_FORMAT
from potlab.potential.committee import Committee
from potlab.potential.potential import DTYPES, Potential
from potlab.potential.potential import FORMAT as POTENTIAL_FORMAT

_WHAT = f"not a potlab potential ({POTENTIAL_FORMAT}) or committee ({COMMITTEE_FORMAT}) file"


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    """The saved dict of a potlab file, read with ``weights_only=True`` on the CPU.

    Raises FileNotFoundError when there is no such file and DataError naming the file when
    it is not a potlab potential, checkpoint or committee (a mace-torch ``.model``, text).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises pickle, zip, runtime errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (" (a mace-torch model? potlab reads the files potlab writes; "
                "`potlab.load(path).model.mace` goes the other way)"
                if path.suffix == ".model" else "")
        raise DataError(path, f"{_WHAT}: torch.load failed: {first[:200]}{hint}") from None
    if not isinstance(state, dict):
        raise DataError(path, f"{_WHAT}: it holds a {type(state).__name__}")
    return state


def _check_dtype(dtype: str | None) -> None:
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")


def potential_from_state(entry: dict[str, Any], path: str | os.PathLike,
                         dtype: str | None = None) -> Potential:
    """A Potential from one saved entry (``spec``, ``state_dict``, ``metadata``)."""
    spec = entry.get("spec") if isinstance(entry, dict) else None
    if not isinstance(spec, dict) or spec.get("format") != POTENTIAL_FORMAT:
        raise DataError(path, f"{_WHAT}: missing 'spec' with format {POTENTIAL_FORMAT}")
    try:
        pot = Potential.from_spec(spec)
        pot.load_state_dict(entry["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise DataError(path, f"cannot rebuild the potential from its spec: {err}") from None
    pot.metadata = dict(entry.get("metadata", {}))
    if dtype is not None:
        pot = pot.to(DTYPES[dtype])
    return pot


def load(path: str | os.PathLike, device: str = "cpu", dtype: str | None = None
         ) -> Potential | Committee:
    """Load a potential saved by :meth:`Potential.save` (or a training checkpoint, whose
    ``potential`` entry has the same layout, or a committee file, which gives a
    :class:`~potlab.potential.Committee`). ``dtype`` is "float32" or "float64"; ``device``
    is ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (a GPU when present): files are read onto
    the CPU and then moved, so a file written on any device loads on any other."""
    _check_dtype(dtype)
    device = resolve_device(device, "device")
    state = read_state(path)
    if state.get("format") == COMMITTEE_FORMAT:
        return load_committee(path, device=device, dtype=dtype, state=state)
    if "potential" in state:  # a training checkpoint
        state = state["potential"]
    return potential_from_state(state, path, dtype).to(device).eval()


def load_committee(path: str | os.PathLike, device: str = "cpu", dtype: str | None = None,
                   group: bool | str = "auto", state: dict[str, Any] | None = None) -> Committee:
    """Load a committee saved by :meth:`Committee.save` onto ``device`` (as :func:`load`)."""
    _check_dtype(dtype)
    device = resolve_device(device, "device")
    state = read_state(path) if state is None else state
    if state.get("format") != COMMITTEE_FORMAT or not isinstance(state.get("members"), list):
        raise DataError(path, f"not a potlab committee (format {COMMITTEE_FORMAT})")
    members = [potential_from_state(entry, path, dtype).eval() for entry in state["members"]]
    c = Committee(members, group=group).to(device).eval()
    c.metadata = dict(state.get("metadata", {}))
    return c
