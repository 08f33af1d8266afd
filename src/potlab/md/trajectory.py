"""Trajectory output that survives a kill: frames (extxyz and ASE ``.traj``) and CSV rows are
buffered and flushed in blocks, then a checkpoint is written atomically (temp file + rename).
A kill loses at most the block in flight; on resume, anything written after the checkpoint is
cut away so files and state agree.

Every stored frame carries ``info["time_fs"]`` (fs) and ``info["step"]``, the momenta, and the
calculator's energy (eV), forces (eV/A) and stress (eV/A^3) when computed.
"""

from __future__ import annotations

import csv
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.trajectory import Trajectory

from potlab.atomic import atomic_open, atomic_path, write_text_atomic
from potlab.md.monitors import density_g_cm3

LOG_COLUMNS = ("step", "time_ps", "temperature_K", "epot_eV", "ekin_eV", "etot_eV",
               "pressure_GPa", "volume_A3", "density_g_cm3")
CHECKPOINT = "checkpoint.pkl"


def snapshot(atoms: Atoms, step: int, time_fs: float, **info: Any) -> Atoms:
    """A detached copy of ``atoms`` with momenta, cached calculator results and
    ``info["step"]``, ``info["time_fs"]``."""
    frame = atoms.copy()
    frame.calc = None
    frame.info.update(info, step=int(step), time_fs=float(time_fs))
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    kept = {k: np.copy(results[k]) if np.ndim(results[k]) else float(results[k])
            for k in ("energy", "forces", "stress") if k in results}
    if kept:
        frame.calc = SinglePointCalculator(frame, **kept)
    return frame


def log_row(atoms: Atoms, step: int, time_fs: float) -> dict[str, Any]:
    """One ``md_log.csv`` row (energies eV, T in K, P in GPa, V in A^3, rho in g/cm^3).
    Pressure includes the kinetic term and is empty when the calculator gives no stress."""
    epot = float(atoms.get_potential_energy())
    ekin = float(atoms.get_kinetic_energy())
    periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3
    pressure: Any = ""
    calc = atoms.calc
    has_stress = calc is not None and ("stress" in getattr(calc, "implemented_properties", ())
                                       or "stress" in getattr(calc, "results", {}))
    if periodic and has_stress:
        try:
            stress = atoms.get_stress(include_ideal_gas=True)
            pressure = float(-np.mean(stress[:3]) / units.GPa)
        except Exception:  # noqa: BLE001 - a calculator that lists stress but cannot give it
            pressure = ""
    return {
        "step": int(step), "time_ps": time_fs / 1000.0,
        "temperature_K": float(atoms.get_temperature()), "epot_eV": epot, "ekin_eV": ekin,
        "etot_eV": epot + ekin, "pressure_GPa": pressure,
        "volume_A3": float(atoms.get_volume()) if periodic else "",
        "density_g_cm3": density_g_cm3(atoms) if periodic else "",
    }


class CSVLog:
    """An append-only CSV with fixed ``columns``; rows are buffered until :meth:`flush`."""

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path, self.columns = Path(path), tuple(columns)
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        if not self.rows:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerows(self.rows)
            fh.flush()
            os.fsync(fh.fileno())
        self.rows = []

    def truncate_after(self, step: int) -> None:
        """Drop rows with ``step`` greater than ``step`` (and any torn last line)."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        keep = lines[:1]
        for line in lines[1:]:
            if not line.endswith("\n") or len(line.split(",")) != len(self.columns):
                break
            try:
                if int(line.split(",", 1)[0]) > step:
                    break
            except ValueError:
                break
            keep.append(line)
        if keep != lines:
            write_text_atomic("".join(keep), self.path)


class FrameWriter:
    """Buffered frames written to ``trajectory.extxyz`` and/or ``trajectory.traj`` in
    ``out_dir`` every ``block`` frames (and on :meth:`flush`)."""

    def __init__(self, out_dir: str | Path, formats: Sequence[str] = ("extxyz", "traj"),
                 block: int = 10) -> None:
        self.out_dir, self.formats, self.block = Path(out_dir), tuple(formats), int(block)
        self.frames: list[Atoms] = []

    def path(self, fmt: str) -> Path:
        return self.out_dir / f"trajectory.{fmt}"

    def add(self, frame: Atoms) -> bool:
        """Buffer a frame; True when a block is full (the caller then flushes everything)."""
        self.frames.append(frame)
        return len(self.frames) >= self.block

    def flush(self) -> None:
        if not self.frames:
            return
        if "extxyz" in self.formats:
            with open(self.path("extxyz"), "a") as fh:
                ase.io.write(fh, self.frames, format="extxyz")
                fh.flush()
                os.fsync(fh.fileno())
        if "traj" in self.formats:
            with Trajectory(self.path("traj"), "a") as traj:
                for frame in self.frames:
                    traj.write(frame)
        self.frames = []

    def truncate_after(self, step: int) -> None:
        """Keep only whole frames with ``info["step"] <= step`` in every file."""
        for fmt in self.formats:
            path = self.path(fmt)
            if not path.exists():
                continue
            kept, total = read_frames_upto(path, step)
            if len(kept) != total:
                with atomic_path(path, suffix=f".{fmt}") as tmp:
                    if fmt == "traj":
                        with Trajectory(tmp, "w") as traj:
                            for frame in kept:
                                traj.write(frame)
                    else:
                        ase.io.write(tmp, kept, format="extxyz")


def read_frames_upto(path: Path, step: int) -> tuple[list[Atoms], int]:
    """Whole frames of ``path`` with ``info["step"] <= step``, and the count of frames (or
    fragments) the file held; a torn last frame counts but is not returned."""
    kept: list[Atoms] = []
    total = 0
    try:
        for frame in ase.io.iread(path, ":"):
            total += 1
            if int(frame.info.get("step", -1)) <= step:
                kept.append(frame)
    except Exception:  # noqa: BLE001 - a torn frame at the end of the file (any reader error)
        total += 1
    return kept, total


CHECKPOINT_FORMAT = "potlab-md-checkpoint/2"


def save_checkpoint(out_dir: str | Path, state: dict[str, Any]) -> None:
    """Write the resumable state atomically: plain data only (numbers, NumPy arrays, RNG
    states, Atoms), exact float64 positions and momenta, tagged with
    :data:`CHECKPOINT_FORMAT`."""
    with atomic_open(Path(out_dir) / CHECKPOINT, "wb") as fh:
        pickle.dump({**state, "format": CHECKPOINT_FORMAT}, fh)


def load_checkpoint(out_dir: str | Path) -> dict[str, Any] | None:
    """The checkpoint of ``out_dir`` (None when there is none). A checkpoint of another
    format (an older potlab pickled ASE's private integrator attributes) is refused with a
    ValueError: it cannot be restored exactly."""
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: written by an older potlab (not {CHECKPOINT_FORMAT}); it "
                         "cannot be resumed exactly: delete the run directory or start over "
                         "(--restart / resume=False)")
    return state
