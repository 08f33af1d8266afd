"""Dataset: a list of labelled frames and where they came from. Deliberately thin."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
from ase import Atoms

from potlab.data.errors import DataError
from potlab.data.keys import REF_ENERGY_KEY, SOURCE_FILE_KEY, SOURCE_INDEX_KEY
from potlab.data.readers import read_frames
from potlab.data.subsets import subsets as _subsets


@dataclass
class Dataset:
    """Labelled frames (``ase.Atoms``, eV and Å; see :mod:`potlab.data.keys`).

    ``source`` is a human-readable description of where the frames came from.
    Indexing with an int gives one ``Atoms``; with a slice or a sequence/array of ints,
    a new Dataset sharing the same Atoms objects.
    """

    frames: list[Atoms] = field(default_factory=list)
    source: str = ""

    @classmethod
    def from_files(
        cls, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **reader_kwargs: Any
    ) -> Dataset:
        """Read and concatenate files with :func:`~potlab.data.read_frames`
        (``reader_kwargs`` are passed on, e.g. ``energy_key="energy_xtb"``)."""
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        frames: list[Atoms] = []
        for path in paths:
            frames.extend(read_frames(path, **reader_kwargs))
        return cls(frames=frames, source=", ".join(str(Path(p)) for p in paths))

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Atoms]:
        return iter(self.frames)

    @overload
    def __getitem__(self, key: int | np.integer) -> Atoms: ...
    @overload
    def __getitem__(self, key: slice | Sequence[int] | np.ndarray) -> Dataset: ...

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            return self.frames[int(key)]
        if isinstance(key, slice):
            return Dataset(frames=self.frames[key], source=self.source)
        indices = np.asarray(key)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {indices.shape} for {len(self)} frames")
            indices = np.flatnonzero(indices)
        if indices.ndim != 1 or (indices.size and not np.issubdtype(indices.dtype, np.integer)):
            raise TypeError(f"index a Dataset with an int, a slice or a list of ints, not {key!r}")
        return Dataset(frames=[self.frames[int(i)] for i in indices], source=self.source)

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in any frame."""
        present: set[int] = set()
        for atoms in self.frames:
            present.update(int(z) for z in np.unique(atoms.numbers))
        return sorted(present)

    def energies(self) -> np.ndarray:
        """Reference energies, shape (n_frames,), eV. DataError if a frame has none."""
        out = np.empty(len(self))
        for i, atoms in enumerate(self.frames):
            if REF_ENERGY_KEY not in atoms.info:
                raise DataError(
                    atoms.info.get(SOURCE_FILE_KEY, self.source or "<dataset>"),
                    "missing energy",
                    frame=atoms.info.get(SOURCE_INDEX_KEY, i),
                    field=REF_ENERGY_KEY,
                )
            out[i] = float(atoms.info[REF_ENERGY_KEY])
        return out

    def subsets(self) -> dict[str, list[int]]:
        """Frame indices by ``config_type``; see :func:`potlab.data.subsets`."""
        return _subsets(self.frames)
