"""Frame sources: one file read frame by frame, with a small in-memory index.

A source scans its file once for what training keeps in memory: per frame the atom
count, a composition id (element counts, for the E0 fit), a subset code and whether it is
a single non-periodic atom. Everything else (positions, labels) is read when asked for,
by frame, and validated then: a corrupt frame is a :class:`DataError` naming the file,
the frame and the field the first time it is read. The frames a source returns equal the
eager readers' (:func:`~potlab.data.read_spice_hdf5`, :func:`~potlab.data.read_ase_db`).

File handles are opened per process, so a source can be handed to DataLoader workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase import Atoms, units

from potlab.data.errors import DataError
from potlab.data.keys import CONFIG_TYPE_KEY, REF_ENERGY_KEY, REF_FORCES_KEY, REF_STRESS_KEY
from potlab.data.readers.common import _check_exists, _label, _to_str
from potlab.data.validate import validate_frames

_HDF5_ERRORS = (OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError)


class _Index:
    """What a source keeps in memory: per-frame arrays and small tables."""

    path: Path
    n_atoms: np.ndarray  # [n_frames] int32
    comp: np.ndarray  # [n_frames] int32, index into compositions
    compositions: list[np.ndarray]  # sorted atomic numbers of one frame of each composition
    config: np.ndarray  # [n_frames] int32, index into config_names
    config_names: list[str]
    single_nonperiodic: np.ndarray  # [n_frames] bool

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    def _codes(self, keys: list, table: dict) -> np.ndarray:
        return np.array([table.setdefault(k, len(table)) for k in keys], dtype=np.int32)

    def __getstate__(self):  # handles stay in the process that opened them
        return {k: v for k, v in self.__dict__.items() if k not in ("_handle", "_pid")}


class SpiceHdf5Source(_Index):
    """A SPICE-style HDF5 file (layout of :func:`~potlab.data.read_spice_hdf5`), read by
    frame. Frames count conformations across groups in file order, as the eager reader."""

    def __init__(self, path: str | os.PathLike[str], subset_key: str = "subset") -> None:
        self.path = Path(path)
        self.subset_key = subset_key
        _check_exists(self.path)
        try:
            with self._open() as f:
                self._scan(f)
        except DataError:
            raise
        except _HDF5_ERRORS as err:
            raise DataError(self.path, f"unexpected HDF5 content: {type(err).__name__}: {err}") from None

    def _open(self):
        import h5py

        try:
            return h5py.File(self.path, "r")
        except Exception as err:
            raise DataError(self.path, f"could not open as HDF5: {err}") from err

    def _scan(self, f) -> None:
        import h5py

        groups, starts, sizes, numbers, configs = [], [], [], [], []
        total = 0
        for name in f:
            g = f[name]
            if not isinstance(g, h5py.Group):
                continue
            for key in ("conformations", "atomic_numbers", "dft_total_energy", "dft_total_gradient"):
                if key not in g:
                    raise DataError(self.path, "missing dataset", frame=total, field=key, group=name)
            z = np.asarray(g["atomic_numbers"][()]).reshape(-1).astype(int)
            shape = g["conformations"].shape
            m = shape[0] if len(shape) else 0
            if len(shape) != 3 or tuple(shape[1:]) != (len(z), 3):
                raise DataError(self.path, f"shape {shape} does not match (n_conformations, "
                                f"{len(z)}, 3)", frame=total, field="conformations", group=name)
            if int(np.prod(g["dft_total_energy"].shape)) != m:
                raise DataError(self.path, f"{int(np.prod(g['dft_total_energy'].shape))} energies "
                                f"for {m} conformations", frame=total, field="dft_total_energy",
                                group=name)
            gshape = g["dft_total_gradient"].shape
            if tuple(gshape[:1]) != (m,):
                raise DataError(self.path, f"gradients for {gshape[0] if gshape else 0} "
                                f"conformations, coordinates for {m}", frame=total,
                                field="dft_total_gradient", group=name)
            sub = g[self.subset_key][()] if self.subset_key in g else None
            groups.append(name)
            starts.append(total)
            sizes.append(m)
            numbers.append(z)
            configs.append(name if sub is None else _to_str(np.asarray(sub)))
            total += m
        self.groups = groups
        self.starts = np.array(starts, dtype=np.int64)
        self.group_numbers = numbers
        comp_table: dict = {}
        group_comp = self._codes([tuple(np.sort(z)) for z in numbers], comp_table)
        self.compositions = [np.array(k, dtype=int) for k in comp_table]
        cfg_table: dict = {}
        group_cfg = self._codes(configs, cfg_table)
        self.config_names = list(cfg_table)
        sizes_a = np.array(sizes, dtype=np.int64)
        self.n_atoms = np.repeat(np.array([len(z) for z in numbers], dtype=np.int32), sizes_a)
        self.comp = np.repeat(group_comp, sizes_a)
        self.config = np.repeat(group_cfg, sizes_a)
        self.single_nonperiodic = self.n_atoms == 1

    def _file(self):
        if getattr(self, "_pid", None) != os.getpid():
            self._handle, self._pid = self._open(), os.getpid()
        return self._handle

    def _by_group(self, frames: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(group, sorted unique frames of it) for the frames asked for."""
        uniq = np.unique(frames)
        if uniq.size and not (0 <= uniq[0] and uniq[-1] < len(self)):
            raise IndexError(f"frame index out of range for {self.path} ({len(self)} frames)")
        gid = np.searchsorted(self.starts, uniq, side="right") - 1
        for g in np.unique(gid):
            yield int(g), uniq[gid == g]

    def _rows(self, g: int, frames: np.ndarray, key: str) -> np.ndarray:
        rows = frames - self.starts[g]
        ds = self._file()[self.groups[g]][key]
        try:
            if rows[-1] - rows[0] + 1 == rows.size:
                return np.asarray(ds[int(rows[0]) : int(rows[-1]) + 1])
            return np.asarray(ds[rows.tolist()])
        except _HDF5_ERRORS as err:
            raise DataError(self.path, f"could not read: {type(err).__name__}: {err}",
                            frame=int(frames[0]), field=key, group=self.groups[g]) from None

    def read(self, frames) -> list[Atoms]:
        """The frames (0-based indices in this file, any order, repeats allowed) as
        labelled, validated Atoms, in the order asked for."""
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        got: dict[int, Atoms] = {}
        for g, ids in self._by_group(frames):
            name, z = self.groups[g], self.group_numbers[g]
            pos = self._rows(g, ids, "conformations").astype(float) * units.Bohr
            energy = self._rows(g, ids, "dft_total_energy").astype(float).reshape(-1) * units.Hartree
            forces = -self._rows(g, ids, "dft_total_gradient").astype(float) * (units.Hartree / units.Bohr)
            block = []
            for j, frame in enumerate(ids.tolist()):
                atoms = Atoms(numbers=z, positions=pos[j], pbc=False)
                block.append(_label(atoms, path=self.path, source_index=frame, energy=energy[j],
                                    forces=forces[j], config_type=self.config_names[self.config[frame]],
                                    group=name))
            validate_frames(block, file=self.path)
            got.update(zip(ids.tolist(), block))
        return [got[int(i)] for i in frames]

    def energies(self, frames) -> np.ndarray:
        """Reference energies (eV) of the frames, checked finite; shape (len(frames),)."""
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        out = np.empty(len(frames))
        for g, ids in self._by_group(frames):
            e = self._rows(g, ids, "dft_total_energy").astype(float).reshape(-1) * units.Hartree
            bad = np.flatnonzero(~np.isfinite(e))
            if bad.size:
                raise DataError(self.path, f"contains NaN or inf (value {e[bad[0]]})",
                                frame=int(ids[bad[0]]), field=REF_ENERGY_KEY, group=self.groups[g])
            _place(out, frames, ids, e)
        return out

    def structures(self, stop: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(atomic numbers [n], positions [m, n, 3] in A) of frames 0..stop-1, in blocks."""
        for g, name in enumerate(self.groups):
            lo = int(self.starts[g])
            if lo >= stop:
                return
            m = min(stop - lo, (int(self.starts[g + 1]) if g + 1 < len(self.groups) else len(self)) - lo)
            if m > 0:
                ds = self._file()[name]["conformations"]
                yield self.group_numbers[g], np.asarray(ds[:m]).astype(float) * units.Bohr


def _place(out: np.ndarray, frames: np.ndarray, ids: np.ndarray, values: np.ndarray) -> None:
    """out[k] = values[ids == frames[k]] for every k whose frame is in ids (sorted)."""
    pos = np.searchsorted(ids, frames)
    pos = np.minimum(pos, len(ids) - 1)
    hit = ids[pos] == frames
    out[hit] = values[pos[hit]]


class AseDbSource(_Index):
    """An ASE SQLite database (:func:`~potlab.data.read_ase_db`), rows read by position."""

    def __init__(self, path: str | os.PathLike[str], *, energy_key: str = REF_ENERGY_KEY,
                 forces_key: str = REF_FORCES_KEY, stress_key: str = REF_STRESS_KEY,
                 config_type_key: str = CONFIG_TYPE_KEY) -> None:
        self.path = Path(path)
        self.keys = (energy_key, forces_key, stress_key, config_type_key)
        _check_exists(self.path)
        ids, n, comps, cfgs, single = [], [], [], [], []
        try:
            db = self._connect()
            with db:
                for row in db.select(sort="id", include_data=False,
                                     columns=["id", "numbers", "pbc", "key_value_pairs"]):
                    z = np.asarray(row.numbers)
                    ids.append(row.id)
                    n.append(len(z))
                    comps.append(tuple(np.sort(z).tolist()))
                    cfgs.append(row.key_value_pairs.get(config_type_key))
                    single.append(len(z) == 1 and not np.any(row.pbc))
        except DataError:
            raise
        except Exception as err:
            raise DataError(self.path, f"could not open as an ASE database: {err}") from err
        self.ids = np.array(ids, dtype=np.int64)
        self.n_atoms = np.array(n, dtype=np.int32)
        comp_table: dict = {}
        self.comp = self._codes(comps, comp_table)
        self.compositions = [np.array(k, dtype=int) for k in comp_table]
        cfg_table: dict = {}
        from potlab.data.keys import DEFAULT_CONFIG_TYPE

        self.config = self._codes([DEFAULT_CONFIG_TYPE if c is None else _to_str(c) for c in cfgs],
                                  cfg_table)
        self.config_names = list(cfg_table)
        self.single_nonperiodic = np.array(single, dtype=bool)

    def _connect(self):
        import ase.db

        return ase.db.connect(str(self.path), type="db")

    def _db(self):
        if getattr(self, "_pid", None) != os.getpid():
            db = self._connect()
            db.__enter__()  # one connection for this process's reads
            self._handle, self._pid = db, os.getpid()
        return self._handle

    def read(self, frames) -> list[Atoms]:
        """The frames (row positions, any order, repeats allowed) as labelled, validated
        Atoms, in the order asked for."""
        from potlab.data.readers.asedb import row_frame

        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        db, got = self._db(), {}
        for i in np.unique(frames).tolist():
            if not 0 <= i < len(self):
                raise IndexError(f"frame {i} out of range for {self.path} ({len(self)} frames)")
            try:
                row = db.get(id=int(self.ids[i]))
            except Exception as err:  # noqa: BLE001 - a damaged row: ASE raises many types
                raise DataError(self.path, f"could not read row id {self.ids[i]}: {err}", frame=i) from None
            got[i] = row_frame(row, i, self.path, self.keys)
        validate_frames(list(got.values()), file=self.path)
        return [got[int(i)] for i in frames]

    def energies(self, frames) -> np.ndarray:
        """Reference energies (eV) of the frames (rows read whole and validated)."""
        return np.array([a.info[REF_ENERGY_KEY] for a in self.read(frames)], dtype=float)

    def structures(self, stop: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(atomic numbers [n], positions [1, n, 3] in A) of rows 0..stop-1, one by one."""
        db = self._db()
        for i in range(min(stop, len(self))):
            a = db.get(id=int(self.ids[i])).toatoms()
            yield a.numbers, np.asarray(a.positions, dtype=float)[None]


def open_source(path: str | os.PathLike[str], **keys) -> SpiceHdf5Source | AseDbSource:
    """The lazy source for ``path`` by suffix (``.h5``/``.hdf5`` or ``.db``); ``keys``
    are the label keys (ASE db only). ValueError for another format."""
    suffix = Path(path).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return SpiceHdf5Source(path)
    if suffix == ".db":
        return AseDbSource(path, **keys)
    raise ValueError(f"{path}: lazy reading supports .h5/.hdf5 and .db files, not {suffix!r}")
