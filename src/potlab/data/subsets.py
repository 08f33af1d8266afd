"""Subsets (``config_type``) of a dataset, per-subset loss weights and sampling fractions.

A subset is the set of frames sharing ``atoms.info["config_type"]``. Two knobs act on them:
a loss weight per frame (:func:`frame_weights`) and how often a frame is drawn
(:func:`sampling_probabilities`; seed 003 gives two isolated molecules 5% of the steps each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from potlab.data.keys import CONFIG_TYPE_KEY, DEFAULT_CONFIG_TYPE


def config_type(atoms: Atoms) -> str:
    """The subset name of a frame (``"Default"`` when it has none)."""
    return str(atoms.info.get(CONFIG_TYPE_KEY, DEFAULT_CONFIG_TYPE))


def subsets(frames: Sequence[Atoms]) -> dict[str, list[int]]:
    """Frame indices grouped by ``config_type``, subsets in order of first appearance."""
    groups: dict[str, list[int]] = {}
    if getattr(frames, "lazy", False):  # LazyFrames: from its index, nothing read
        for i, name in enumerate(frames.config_types()):
            groups.setdefault(name, []).append(i)
        return groups
    for i, atoms in enumerate(frames):
        groups.setdefault(config_type(atoms), []).append(i)
    return groups


def _check_names(names, known: dict[str, list[int]], what: str) -> None:
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown subset(s) in {what}: {', '.join(map(repr, unknown))}; "
            f"the frames have: {', '.join(map(repr, known))}"
        )


def frame_weights(
    frames: Sequence[Atoms], weights: Mapping[str, float], default: float = 1.0
) -> np.ndarray:
    """Per-frame loss weights, shape (n_frames,): ``weights[config_type]``, else ``default``.

    Raises ValueError naming any subset in ``weights`` that no frame has (a typo would
    otherwise silently weigh nothing) or a negative weight.
    """
    groups = subsets(frames)
    _check_names(weights, groups, "weights")
    for name, w in weights.items():
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"weight for subset {name!r} must be finite and >= 0, got {w}")
    out = np.full(len(frames), float(default))
    for name, w in weights.items():
        out[groups[name]] = float(w)
    return out


def sampling_probabilities(frames: Sequence[Atoms], fractions: Mapping[str, float]) -> np.ndarray:
    """Per-frame probabilities of being drawn, shape (n_frames,), summing to 1.

    Subset ``s`` named in ``fractions`` receives ``fractions[s]`` of all draws, shared
    equally among its frames; the frames of unnamed subsets share the remaining
    ``1 - sum(fractions)`` equally. E.g. ``{"EC": 0.05, "EMC": 0.05}`` puts one isolated
    EC and one isolated EMC molecule in 5% of the draws each.

    Raises ValueError for an unknown subset name, a fraction outside [0, 1], fractions
    summing to more than 1, or fractions summing to less than 1 when every subset is named.
    """
    groups = subsets(frames)
    _check_names(fractions, groups, "fractions")
    for name, f in fractions.items():
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"fraction for subset {name!r} must be in [0, 1], got {f}")
    named = float(sum(fractions.values()))
    if named > 1.0 + 1e-9:
        raise ValueError(f"subset fractions sum to {named:.6g} > 1")
    rest = [i for name, idx in groups.items() if name not in fractions for i in idx]
    if not rest and abs(named - 1.0) > 1e-9:
        raise ValueError(f"every subset is named but the fractions sum to {named:.6g}, not 1")
    p = np.zeros(len(frames))
    for name, f in fractions.items():
        p[groups[name]] = f / len(groups[name])
    if rest:
        p[rest] = max(0.0, 1.0 - named) / len(rest)
    return p / p.sum()
