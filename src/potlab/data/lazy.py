"""Frames larger than memory: a sequence of labelled frames read from their files on demand.

:class:`LazyFrames` stands where a ``list[ase.Atoms]`` stands in potlab's data functions
(``len``, indexing, iteration, :func:`~potlab.data.fingerprint`, subsets, E0 fit, outlier
screen), but keeps in memory only what a source's index holds (atom counts, compositions,
subset codes) and the frame indices of its view. Iteration and the statistics read in
chunks. :func:`open_frames` chooses it or a plain list by size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from potlab.data.errors import DataError
from potlab.data.keys import CONFIG_TYPE_KEY, REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY
from potlab.data.lazy_sources import AseDbSource, SpiceHdf5Source, open_source

#: auto mode reads lazily from this many frames (all files together) ...
LAZY_MIN_FRAMES = 200_000
#: ... or from this many bytes of files
LAZY_MIN_BYTES = 2 * 1024**3
#: frames per read when streaming
CHUNK = 4096

Source = SpiceHdf5Source | AseDbSource


class LazyFrames(Sequence):
    """Labelled frames of one or several files (concatenated in order), read on demand.

    ``index`` (positions into the concatenation) makes a view: ``frames[[3, 1]]`` is a
    LazyFrames of those two frames, ``frames[3]`` one ``Atoms`` read now. Frames read
    are validated; a corrupt one raises DataError naming file, frame and field.
    """

    lazy = True

    def __init__(self, sources: Sequence[Source], index: np.ndarray | None = None) -> None:
        self.sources = list(sources)
        self._offsets = np.cumsum([0] + [len(s) for s in self.sources]).astype(np.int64)
        total = int(self._offsets[-1])
        self.index = (np.arange(total, dtype=np.int64) if index is None
                      else np.asarray(index, dtype=np.int64).reshape(-1))
        self._build_tables()

    def _build_tables(self) -> None:
        comps: list[np.ndarray] = []
        names: dict[str, int] = {}
        comp_all, cfg_all = [], []
        for s in self.sources:
            comp_all.append(s.comp + len(comps))
            comps.extend(s.compositions)
            code = np.array([names.setdefault(n, len(names)) for n in s.config_names], dtype=np.int32)
            cfg_all.append(code[s.config] if len(code) else s.config)
        self.compositions = comps
        self.config_names = list(names)
        self._comp = np.concatenate(comp_all) if comp_all else np.zeros(0, np.int32)
        self._config = np.concatenate(cfg_all) if cfg_all else np.zeros(0, np.int32)
        self._n_atoms = np.concatenate([s.n_atoms for s in self.sources]) if self.sources else np.zeros(0, np.int32)
        self._single = (np.concatenate([s.single_nonperiodic for s in self.sources])
                        if self.sources else np.zeros(0, bool))

    # ---- per-frame index (of this view) -------------------------------------------------
    @property
    def n_atoms(self) -> np.ndarray:
        """Atoms per frame, shape (n_frames,)."""
        return self._n_atoms[self.index]

    @property
    def comp(self) -> np.ndarray:
        """Composition id per frame (into :attr:`compositions`), shape (n_frames,)."""
        return self._comp[self.index]

    @property
    def single_nonperiodic(self) -> np.ndarray:
        """Whether each frame is one atom without periodicity, shape (n_frames,)."""
        return self._single[self.index]

    def config_types(self) -> list[str]:
        """The subset (``config_type``) of each frame."""
        return [self.config_names[c] for c in self._config[self.index].tolist()]

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the frames of this view."""
        used = np.unique(self.comp)
        return sorted({int(z) for c in used.tolist() for z in self.compositions[c]})

    # ---- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.index.shape[0])

    def view(self, positions) -> LazyFrames:
        """The frames at ``positions`` (into this view) as a new view; nothing is read."""
        new = object.__new__(LazyFrames)
        new.__dict__.update(self.__dict__)
        new.index = self.index[np.asarray(positions, dtype=np.int64).reshape(-1)]
        return new

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            n = len(self)
            if not -n <= int(key) < n:
                raise IndexError(f"frame {key} out of range for {n} frames")
            return self.read([int(key) % n])[0]
        if isinstance(key, slice):
            return self.view(np.arange(len(self))[key])
        return self.view(key)

    def read(self, positions) -> list[Atoms]:
        """Frames at ``positions`` (into this view; any order, repeats allowed), read now."""
        glob = self.index[np.asarray(positions, dtype=np.int64).reshape(-1)]
        src = np.searchsorted(self._offsets, glob, side="right") - 1
        out: list[Atoms | None] = [None] * len(glob)
        for k in np.unique(src).tolist():
            at = np.flatnonzero(src == k)
            for j, atoms in zip(at.tolist(), self.sources[k].read(glob[at] - self._offsets[k])):
                out[j] = atoms
        return out  # type: ignore[return-value]

    def chunks(self, size: int = CHUNK) -> Iterator[np.ndarray]:
        """Positions 0..len-1 in consecutive blocks of ``size``."""
        for lo in range(0, len(self), size):
            yield np.arange(lo, min(lo + size, len(self)))

    def iter_chunks(self, size: int = CHUNK) -> Iterator[list[Atoms]]:
        """The frames in order, ``size`` at a time."""
        for pos in self.chunks(size):
            yield self.read(pos)

    def __iter__(self) -> Iterator[Atoms]:
        for block in self.iter_chunks():
            yield from block

    def energies(self, size: int = 16 * CHUNK) -> np.ndarray:
        """Reference energies of every frame (eV), shape (n_frames,), read in chunks."""
        out = np.empty(len(self))
        for pos in self.chunks(size):
            glob = self.index[pos]
            src = np.searchsorted(self._offsets, glob, side="right") - 1
            for k in np.unique(src).tolist():
                at = np.flatnonzero(src == k)
                out[pos[at]] = self.sources[k].energies(glob[at] - self._offsets[k])
        return out

    def fingerprint(self, n: int | None = None) -> str:
        """:func:`potlab.data.fingerprint` of the first ``n`` frames, streamed."""
        n = len(self) if n is None else min(n, len(self))
        h = hashlib.sha256()
        if np.array_equal(self.index[:n], np.arange(n)):  # the file order: read in blocks
            left = n
            for s in self.sources:
                for numbers, block in s.structures(left):
                    z = np.asarray(numbers, dtype=np.int64).tobytes()
                    for pos in np.round(block, 6):
                        h.update(z)
                        h.update(pos.tobytes())
                    left -= len(block)
                if left <= 0:
                    break
        else:
            for pos in self.view(np.arange(n)).chunks():
                for a in self.read(pos):
                    h.update(np.asarray(a.numbers, dtype=np.int64).tobytes())
                    h.update(np.round(np.asarray(a.positions, dtype=float), 6).tobytes())
        return h.hexdigest()[:16]


def is_lazy(frames) -> bool:
    """Whether ``frames`` is a :class:`LazyFrames` (or anything else marked lazy)."""
    return bool(getattr(frames, "lazy", False))


def take(frames, indices):
    """``frames`` at ``indices``: a list for a list, a view (nothing read) for LazyFrames."""
    if is_lazy(frames):
        return frames.view(indices)
    return [frames[int(i)] for i in indices]


def elements_of(*frame_sets) -> list[int]:
    """Sorted atomic numbers present in any of the frame lists or LazyFrames."""
    out: set[int] = set()
    for frames in frame_sets:
        if frames is None:
            continue
        if is_lazy(frames):
            out.update(frames.elements)
        else:
            for a in frames:
                out.update(int(z) for z in np.unique(a.numbers))
    return sorted(out)


def open_frames(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    lazy: bool | None = None,
    energy_key: str = REF_ENERGY_KEY,
    forces_key: str = REF_FORCES_KEY,
    stress_key: str = REF_STRESS_KEY,
    config_type_key: str = CONFIG_TYPE_KEY,
) -> list[Atoms] | LazyFrames:
    """Labelled training frames of one or several files, in memory or lazily.

    ``lazy=None`` reads lazily when every file is an HDF5 (SPICE layout) or ASE database
    and together they hold at least :data:`LAZY_MIN_FRAMES` frames or
    :data:`LAZY_MIN_BYTES` bytes; ``True`` insists (ValueError for another format),
    ``False`` reads everything now. A file without frames is a DataError naming it.
    """
    from potlab.data.readers import read_frames

    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths or [])
    keys = {"energy_key": energy_key, "forces_key": forces_key, "stress_key": stress_key,
            "config_type_key": config_type_key}
    lazy_ok = all(Path(p).suffix.lower() in (".h5", ".hdf5", ".db") for p in paths)
    if lazy is None and lazy_ok:
        size = sum(os.path.getsize(p) for p in paths if os.path.isfile(p))
        sources = [open_source(p, **keys) for p in paths]
        big = size >= LAZY_MIN_BYTES or sum(len(s) for s in sources) >= LAZY_MIN_FRAMES
        lazy = big
    else:
        sources = None
    if lazy:
        sources = sources or [open_source(p, **keys) for p in paths]
        for p, s in zip(paths, sources):
            if len(s) == 0:
                raise DataError(p, "no frames (the file is empty)")
        return LazyFrames(sources)
    frames: list[Atoms] = []
    for p in paths:
        got = read_frames(p, **keys)
        if not got:
            raise DataError(p, "no frames (the file is empty)")
        frames.extend(got)
    return frames
