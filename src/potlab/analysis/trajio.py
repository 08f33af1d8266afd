"""Reading trajectories for analysis: extxyz, ASE .traj, and pymatgen DiffusionAnalyzer JSON.

Two views of the same data:

* :func:`read_trajectory_frames` gives a list of ``ase.Atoms`` as stored, unvalidated
  (what RDF, density and paths take; :func:`potlab.data.read_frames` is the other
  contract: labelled, validated training frames);
* :func:`read_trajectory` / :func:`trajectory_arrays` give a :class:`Trajectory` of numpy
  arrays (what MSD and diffusion take; 25,000 frames stay cheap).

Times: a frame's ``info["time_fs"]`` (fs) wins when every frame carries it; otherwise frame k
is at ``k * timestep_fs``. A pymatgen JSON gives ``time_step * step_skip`` fs per stored frame.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from potlab.data.errors import DataError
from potlab.md.trajectory import LOG_COLUMNS


@dataclass
class Trajectory:
    """A trajectory as arrays.

    Attributes
    ----------
    positions: Cartesian positions, Angstrom, [frames, atoms, 3] (wrapped or not, see
        ``unwrapped``)
    cells: cell vectors (rows), Angstrom, [frames, 3, 3]
    pbc: periodic directions, [3] bool
    symbols: chemical symbols, [atoms]
    masses: amu, [atoms]
    times_fs: time of each frame, fs, [frames], or None when unknown
    unwrapped: True when positions are continuous across periodic boundaries
    temperature_K: the run's temperature when the file states it, else None
    source: the file it came from (for error messages)
    """

    positions: np.ndarray
    cells: np.ndarray
    pbc: np.ndarray
    symbols: list[str]
    masses: np.ndarray
    times_fs: np.ndarray | None = None
    unwrapped: bool = False
    temperature_K: float | None = None
    source: str = "<frames>"
    info: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[1])

    def indices(self, species: str | None) -> np.ndarray:
        """Atom indices of element ``species`` (all atoms for None); error if there are none."""
        sym = np.asarray(self.symbols)
        if species is None:
            return np.arange(len(sym))
        idx = np.flatnonzero(sym == species)
        if idx.size == 0:
            raise DataError(self.source, f"no {species} atoms (elements: {sorted(set(sym))})",
                            field="symbols")
        return idx

    def frame_interval_fs(self) -> float:
        """The (uniform) time between stored frames, fs; error when times are unknown/uneven."""
        if self.times_fs is None or self.n_frames < 2:
            raise DataError(self.source, "frame times unknown: give timestep_fs (fs between "
                            "stored frames) or frames with info['time_fs']", field="time_fs")
        dt = np.diff(self.times_fs)
        if np.any(dt <= 0) or np.ptp(dt) > 1e-6 * max(abs(float(dt.mean())), 1.0):
            bad = int(np.argmax((dt <= 0) | (np.abs(dt - dt[0]) > 1e-6 * abs(dt[0]))))
            raise DataError(self.source, "frame times are not evenly spaced and increasing",
                            frame=bad + 1, field="time_fs")
        return float(dt.mean())


def read_trajectory_frames(path: str | os.PathLike[str], index: str | int | slice = ":"
                           ) -> list[Atoms]:
    """All frames of an extxyz, ASE .traj (or any ASE-readable) file or a pymatgen
    DiffusionAnalyzer JSON (unwrapped positions, ``info["time_fs"]`` set)."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "no such file")
    if p.suffix.lower() == ".json":
        return frames_from_trajectory(read_pymatgen_json(p))
    import ase.io

    try:
        frames = ase.io.read(p, index=index)
    except Exception as exc:  # ASE raises many types for bad files
        raise DataError(p, f"cannot read trajectory: {exc}") from exc
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise DataError(p, "no frames")
    return frames


#: deprecated name of :func:`read_trajectory_frames` (kept while callers move)
read_frames = read_trajectory_frames


def read_trajectory(path: str | os.PathLike[str], timestep_fs: float | None = None) -> Trajectory:
    """A trajectory file as arrays (see :func:`trajectory_arrays` for the time rule)."""
    p = Path(path)
    if p.suffix.lower() == ".json" and p.exists():
        return read_pymatgen_json(p)
    traj = trajectory_arrays(read_trajectory_frames(p), timestep_fs=timestep_fs)
    traj.source = str(p)
    return traj


def trajectory_arrays(frames: list[Atoms], timestep_fs: float | None = None,
                      source: str = "<frames>") -> Trajectory:
    """Stack frames (same atoms in the same order) into a :class:`Trajectory`.

    ``timestep_fs`` is the time between stored frames (fs); ``info["time_fs"]`` in every frame
    overrides it.
    """
    if not frames:
        raise DataError(source, "no frames")
    symbols = frames[0].get_chemical_symbols()
    n = len(symbols)
    pos = np.empty((len(frames), n, 3))
    cells = np.empty((len(frames), 3, 3))
    for k, atoms in enumerate(frames):
        if len(atoms) != n:
            raise DataError(source, f"{len(atoms)} atoms, frame 0 has {n}", frame=k,
                            field="positions")
        pos[k] = atoms.get_positions()
        cells[k] = atoms.cell.array
    if not np.isfinite(pos).all():
        k = int(np.flatnonzero(~np.isfinite(pos).all(axis=(1, 2)))[0])
        raise DataError(source, "non-finite positions", frame=k, field="positions")
    times = None
    if all("time_fs" in a.info for a in frames):
        times = np.array([float(a.info["time_fs"]) for a in frames])
    elif timestep_fs is not None:
        times = np.arange(len(frames)) * float(timestep_fs)
    return Trajectory(positions=pos, cells=cells, pbc=np.asarray(frames[0].pbc, dtype=bool),
                      symbols=symbols, masses=frames[0].get_masses(), times_fs=times,
                      source=source, info=dict(frames[0].info))


def read_pymatgen_json(path: str | os.PathLike[str]) -> Trajectory:
    """A serialised pymatgen ``DiffusionAnalyzer`` (``as_dict()`` JSON) as a trajectory.

    Positions are the initial structure's Cartesian coordinates plus the stored displacements
    (``displacements[atom, frame, xyz]``, Angstrom), so they are already unwrapped; frame k is at
    ``k * time_step * step_skip`` fs. Read with the standard library only (no pymatgen).
    """
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(p, f"cannot read JSON: {exc}") from exc
    if not isinstance(d, dict):
        raise DataError(p, "not a pymatgen DiffusionAnalyzer JSON (expected an object)")
    for key in ("structure", "displacements", "time_step", "step_skip"):
        if key not in d:
            raise DataError(p, "not a pymatgen DiffusionAnalyzer JSON", field=key)
    try:
        sites = d["structure"]["sites"]
        symbols = [str(site["species"][0]["element"]) for site in sites]
        x0 = np.array([s["xyz"] for s in sites], dtype=float)
        disp = np.asarray(d["displacements"], dtype=float)
        cell0 = np.asarray(d["structure"]["lattice"]["matrix"], dtype=float)
        lattices = d.get("lattices")
        lattices = None if lattices is None else np.asarray(lattices, dtype=float)
        dt = float(d["time_step"]) * float(d["step_skip"])
        temperature = float(d["temperature"]) if d.get("temperature") is not None else None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DataError(p, f"not a pymatgen DiffusionAnalyzer JSON: {type(exc).__name__}: "
                        f"{exc}", field="structure") from None
    from ase.data import atomic_masses, atomic_numbers

    unknown = [s for s in symbols if s not in atomic_numbers]
    if unknown:
        raise DataError(p, f"unknown element {unknown[0]!r}", field="structure.sites")
    if x0.shape != (len(sites), 3) or not np.isfinite(x0).all():
        raise DataError(p, f"site coordinates must be finite [{len(sites)}, 3], got shape "
                        f"{x0.shape}", field="structure.sites")
    if disp.ndim != 3 or disp.shape[0] != len(sites) or disp.shape[2] != 3 or disp.shape[1] < 1:
        raise DataError(p, f"shape {disp.shape}, expected [{len(sites)}, frames, 3]",
                        field="displacements")
    if not np.isfinite(disp).all():
        raise DataError(p, "contains NaN or inf", field="displacements")
    if cell0.shape != (3, 3) or not np.isfinite(cell0).all():
        raise DataError(p, f"lattice matrix must be finite 3x3, got shape {cell0.shape}",
                        field="structure.lattice")
    if not (np.isfinite(dt) and dt > 0):
        raise DataError(p, f"time_step * step_skip must be positive, got {dt}", field="time_step")
    pos = x0[None, :, :] + disp.transpose(1, 0, 2)
    if lattices is not None and lattices.shape == (pos.shape[0], 3, 3) and np.isfinite(lattices).all():
        cells = lattices
    else:
        cells = np.broadcast_to(cell0, (pos.shape[0], 3, 3)).copy()
    masses = np.array([atomic_masses[atomic_numbers[s]] for s in symbols])
    return Trajectory(positions=pos, cells=cells, pbc=np.ones(3, dtype=bool), symbols=symbols,
                      masses=masses, times_fs=np.arange(pos.shape[0]) * dt, unwrapped=True,
                      temperature_K=temperature, source=str(p), info={"specie": d.get("specie")})


def frames_from_trajectory(traj: Trajectory) -> list[Atoms]:
    """The trajectory as ``ase.Atoms`` frames with ``info["time_fs"]`` when times are known."""
    frames = []
    for k in range(traj.n_frames):
        a = Atoms(traj.symbols, positions=traj.positions[k], cell=traj.cells[k], pbc=traj.pbc)
        if traj.times_fs is not None:
            a.info["time_fs"] = float(traj.times_fs[k])
        frames.append(a)
    return frames


#: the columns potlab.md writes to md_log.csv (one definition, in potlab.md.trajectory)
MD_LOG_COLUMNS = LOG_COLUMNS


def _read_csv_columns(p: Path, required: tuple[str, ...]) -> dict[str, list[float]]:
    import csv

    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        names = [n.strip() for n in (reader.fieldnames or [])]
        for col in required:
            if col not in names:
                raise DataError(p, f"missing column (have {names})", field=col)
        cols: dict[str, list[float]] = {n: [] for n in names}
        for row_no, row in enumerate(reader):
            for key, val in row.items():
                key = key.strip() if key else key
                if key not in cols:
                    continue
                if isinstance(val, list):  # more values than columns
                    raise DataError(p, f"{len(val)} values more than the header has columns",
                                    frame=row_no)
                try:
                    cols[key].append(float(val) if val not in ("", None) else np.nan)
                except ValueError as exc:
                    raise DataError(p, f"not a number: {val!r}", frame=row_no,
                                    field=key) from exc
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise DataError(p, "rows of unequal length")
    return cols


def read_md_log(path: str | os.PathLike[str],
                required: tuple[str, ...] = ("time_ps", "etot_eV")) -> dict[str, np.ndarray]:
    """An MD log CSV (columns ``MD_LOG_COLUMNS`` as potlab.md writes them, plus any extra such
    as a wall-clock column) as ``{column: float array}``.

    Missing ``required`` columns and unparsable values raise :class:`DataError` naming the file,
    the row (as ``frame``, 0-based data row) and the column.
    """
    import csv

    p = Path(path)
    if not p.exists():
        raise DataError(p, "no such file")
    try:
        cols = _read_csv_columns(p, required)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(p, f"not a CSV log: {exc}") from None
    out = {k: np.asarray(v, dtype=float) for k, v in cols.items()}
    for col in required:
        if out[col].size == 0:
            raise DataError(p, "no data rows", field=col)
        bad = np.flatnonzero(~np.isfinite(out[col]))
        if bad.size:
            raise DataError(p, "missing or non-finite value", frame=int(bad[0]), field=col)
    return out
