"""Train/validation/test splits as index lists, saved as JSON so a run can be repeated.

A split indexes the frames of its data set as read (before any outlier drop), and records
how many frames that data set has and a fingerprint of them: a split loaded later is
checked against the data it is about to index (:func:`check_split`), so a split made for
other data, or for the data before frames were dropped or inserted, is refused instead of
silently picking the wrong frames.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from ase import Atoms

from potlab.atomic import atomic_open
from potlab.data.errors import DataError
from potlab.data.subsets import subsets


@dataclass
class Split:
    """Frame indices of each part of a dataset; the parts are disjoint.

    ``strategy`` says how it was made (``"random"``, ``"subset"``, ``"file"``, ...);
    ``seed`` is the random seed used, if any. ``n_frames`` and ``fingerprint`` (see
    :func:`fingerprint`) describe the data set the indices refer to, when known.
    """

    train: list[int]
    valid: list[int]
    test: list[int] = field(default_factory=list)
    strategy: str = "random"
    seed: int | None = None
    n_frames: int | None = None
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        self.train = [int(i) for i in self.train]
        self.valid = [int(i) for i in self.valid]
        self.test = [int(i) for i in self.test]
        parts = {"train": self.train, "valid": self.valid, "test": self.test}
        seen: dict[int, str] = {}
        for name, indices in parts.items():
            for i in indices:
                if i in seen:
                    raise ValueError(f"frame {i} is in both {seen[i]!r} and {name!r}")
                seen[i] = name

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON, atomically (temporary file, then rename). Returns the path."""
        path = Path(path)
        with atomic_open(path, "w") as handle:
            json.dump(asdict(self), handle, indent=1)
            handle.write("\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a split written by :meth:`save` (``test``, ``strategy``, ``seed`` optional).

        Raises DataError naming the file when it is not such a JSON object.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(path, f"not valid JSON: {err}") from None
        if not isinstance(d, dict):
            raise DataError(path, "expected a JSON object with 'train' and 'valid'")
        for key in ("train", "valid"):
            if key not in d:
                raise DataError(path, "missing index list", field=key)
        unknown = set(d) - {"train", "valid", "test", "strategy", "seed", "n_frames", "fingerprint"}
        if unknown:
            raise DataError(path, f"unknown key(s) {sorted(unknown)}")
        for key in ("train", "valid", "test"):
            values = d.get(key, [])
            if not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise DataError(path, "expected a list of integers", field=key)
        if d.get("n_frames") is not None and not isinstance(d["n_frames"], int):
            raise DataError(path, "expected an integer", field="n_frames")
        try:
            return cls(**d)
        except ValueError as err:
            raise DataError(path, str(err)) from err

    def describing(self, frames: Sequence[Atoms]) -> Split:
        """This split with ``n_frames`` and ``fingerprint`` of the frames it indexes."""
        return replace(self, n_frames=len(frames), fingerprint=fingerprint(frames))

    def without(self, indices) -> Split:
        """This split with the frames ``indices`` left out of every part (dropped outliers)."""
        drop = {int(i) for i in indices}
        return replace(self, train=[i for i in self.train if i not in drop],
                       valid=[i for i in self.valid if i not in drop],
                       test=[i for i in self.test if i not in drop])


def fingerprint(frames: Sequence[Atoms], n: int | None = None) -> str:
    """A hash (16 hex characters) of the first ``n`` frames' atomic numbers and positions
    (rounded to 1e-6 A): equal for the same structures in the same order. A LazyFrames
    computes it streaming (the same hash)."""
    if getattr(frames, "lazy", False):
        return frames.fingerprint(n)
    h = hashlib.sha256()
    for a in frames[: len(frames) if n is None else n]:
        h.update(np.asarray(a.numbers, dtype=np.int64).tobytes())
        h.update(np.round(np.asarray(a.positions, dtype=float), 6).tobytes())
    return h.hexdigest()[:16]


def check_split(split: Split, frames: Sequence[Atoms], path: str | os.PathLike[str]) -> Split:
    """Refuse (DataError naming ``path``) a split that does not describe ``frames``: another
    frame count or fingerprint than recorded, or an index outside ``[0, len(frames))``.
    Returns the split."""
    n = len(frames)
    if split.n_frames is not None and split.n_frames != n:
        raise DataError(path, f"this split was made for {split.n_frames} frames, the data has "
                        f"{n}: the data changed since (use a new run directory, or delete "
                        f"the split to draw a new one)", field="n_frames")
    if split.fingerprint is not None and split.fingerprint != fingerprint(frames):
        raise DataError(path, f"this split was made for other frames (fingerprint "
                        f"{split.fingerprint}, the data has {fingerprint(frames)}): the data "
                        f"changed since (use a new run directory)", field="fingerprint")
    for name in ("train", "valid", "test"):
        for i in getattr(split, name):
            if not 0 <= i < n:
                raise DataError(path, f"index {i} out of range for a dataset of {n} frames",
                                field=name)
    return split


def random_split(n: int, *, valid_fraction: float, seed: int, test_fraction: float = 0.0) -> Split:
    """Random split of ``n`` frames using ``numpy.random.default_rng(seed).permutation``.

    Part sizes are ``round(fraction * n)``, at least 1 for a positive fraction when
    ``n >= 2`` (valid) / ``n >= 3`` (test), leaving at least one training frame.
    Index lists are sorted. The same ``n``, fractions and seed give the same split.
    """
    if n < 1:
        raise ValueError(f"cannot split {n} frames")
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {f}")
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"valid_fraction + test_fraction = {valid_fraction + test_fraction} leaves no "
            "training frames"
        )
    n_valid = round(valid_fraction * n)
    if valid_fraction > 0 and n >= 2:
        n_valid = max(n_valid, 1)
    n_test = round(test_fraction * n)
    if test_fraction > 0 and n >= 3:
        n_test = max(n_test, 1)
    # Keep at least one training frame.
    while n_valid + n_test > n - 1 and (n_valid > 1 or n_test > 1):
        if n_test >= n_valid:
            n_test -= 1
        else:
            n_valid -= 1
    n_valid, n_test = min(n_valid, n - 1), min(n_test, max(n - 1 - n_valid, 0))
    perm = np.random.default_rng(seed).permutation(n)
    valid = sorted(perm[:n_valid].tolist())
    test = sorted(perm[n_valid : n_valid + n_test].tolist())
    train = sorted(perm[n_valid + n_test :].tolist())
    return Split(train=train, valid=valid, test=test, strategy="random", seed=seed)


def subset_split(
    frames: Sequence[Atoms],
    *,
    valid_subsets: Sequence[str],
    test_subsets: Sequence[str] = (),
) -> Split:
    """Split by ``config_type``: frames of ``valid_subsets`` validate, of ``test_subsets``
    test, the rest train. Raises ValueError for a subset no frame has, or one named twice.
    """
    if isinstance(valid_subsets, str) or isinstance(test_subsets, str):
        raise TypeError("valid_subsets and test_subsets are sequences of subset names")
    groups = subsets(frames)
    for name in [*valid_subsets, *test_subsets]:
        if name not in groups:
            raise ValueError(
                f"unknown subset {name!r}; the frames have: {', '.join(map(repr, groups))}"
            )
    both = set(valid_subsets) & set(test_subsets)
    if both:
        raise ValueError(f"subset(s) {sorted(both)} named for both valid and test")
    valid = sorted(i for name in valid_subsets for i in groups[name])
    test = sorted(i for name in test_subsets for i in groups[name])
    taken = set(valid) | set(test)
    train = [i for i in range(len(frames)) if i not in taken]
    return Split(train=train, valid=valid, test=test, strategy="subset", seed=None)


def split_from_file(path: str | os.PathLike[str], n: int) -> Split:
    """Load a split (JSON as written by :meth:`Split.save`) for a dataset of ``n`` frames.

    Raises DataError naming the file and part when an index is outside ``[0, n)``.
    """
    split = Split.load(path)
    for name in ("train", "valid", "test"):
        for i in getattr(split, name):
            if not 0 <= i < n:
                raise DataError(
                    path, f"index {i} out of range for a dataset of {n} frames", field=name
                )
    if split.n_frames is not None and split.n_frames != n:
        raise DataError(path, f"this split was made for {split.n_frames} frames, the data has {n}",
                        field="n_frames")
    return split
