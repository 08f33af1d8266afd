"""Stability monitors: has a trajectory failed, when, and why (seeds 000 and 003, t_stab).

A monitor is a small object with ``start(atoms0)`` (the reference state at t=0) and
``check(atoms, time_fs) -> str | None`` (a failure reason, or None while the frame is fine).
The same objects run live inside :func:`potlab.md.runner.run_md` (the run stops and records
the reason) and after the fact through :func:`check_trajectory`, which
``potlab analyze stability`` calls.

Units: Angstrom, fs (ps in results), K, g/cm^3.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import find_mic
from ase.neighborlist import natural_cutoffs, neighbor_list

AMU_PER_A3_TO_G_CM3 = 1.66053906660  # 1 amu / 1 A^3 in g/cm^3
# groups 1 and 2: not judged by the bond monitor unless asked
IONIC_ELEMENTS = ("Li", "Na", "K", "Rb", "Cs", "Fr", "Be", "Mg", "Ca", "Sr", "Ba", "Ra")


log = logging.getLogger(__name__)


def density_g_cm3(atoms: Atoms) -> float:
    """Mass density in g/cm^3 of a periodic cell (NaN when the cell has no volume)."""
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        return float("nan")
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_CM3)


class Monitor:
    """Base class: ``name`` names the failure kind; subclasses override ``check``."""

    name = "monitor"

    def start(self, atoms: Atoms) -> None:
        """Record the reference state (the frame at t=0)."""

    def check(self, atoms: Atoms, time_fs: float) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self) -> dict | None:
        """What :meth:`check` has accumulated since :meth:`start` (for a resumed run to go
        on exactly); None for monitors that judge each frame on its own."""
        return None

    def restore(self, state: dict | None) -> None:
        """Put back what :meth:`state` returned (after :meth:`start`)."""


class BondMonitor(Monitor):
    """A bond present at t=0 stretched beyond its initial length + ``max_stretch`` (A), or
    beyond ``max_factor`` times its initial length (seed 003's active-learning explorer:
    2, a bond 100 % longer); either may be None.

    Bonds are the atom pairs closer than the sum of ASE's covalent ``natural_cutoffs`` at t=0
    (times ``mult``) plus ``skin`` (A; 0.3 as in ASE's ``build_neighbor_list``, since real
    bonds are often a little longer than the radii sum: C-C 1.53 A vs 2 x 0.76 A). Lengths
    are minimum-image distances, so wrapping does not matter. ``exclude_elements`` drops
    bonds touching those elements; by default (None) the alkali and alkaline-earth metals,
    whose contacts are ionic and whose hops in a superionic conductor (Li in LGPS) are the
    physics being measured, not a failure. Pass ``()`` to judge every pair.
    """

    name = "bond"

    def __init__(self, max_stretch: float | None = 0.5, mult: float = 1.0, skin: float = 0.3,
                 exclude_elements: Sequence[str] | None = None,
                 max_factor: float | None = None) -> None:
        if max_stretch is None and max_factor is None:
            raise ValueError("BondMonitor needs max_stretch or max_factor")
        self.max_stretch = None if max_stretch is None else float(max_stretch)
        self.max_factor = None if max_factor is None else float(max_factor)
        self.mult, self.skin = float(mult), float(skin)
        self.exclude_elements = IONIC_ELEMENTS if exclude_elements is None else tuple(exclude_elements)

    def start(self, atoms: Atoms) -> None:
        radii = np.asarray(natural_cutoffs(atoms, mult=self.mult)) + 0.5 * self.skin
        i, j = neighbor_list("ij", atoms, radii)
        keep = i < j
        if self.exclude_elements:
            sym = np.array(atoms.get_chemical_symbols())
            bad = np.isin(sym, self.exclude_elements)
            keep &= ~bad[i] & ~bad[j]
        pairs = np.unique(np.stack([i[keep], j[keep]], axis=1), axis=0).reshape(-1, 2)
        self.i, self.j = pairs[:, 0], pairs[:, 1]
        self.len0 = self.lengths(atoms)

    def lengths(self, atoms: Atoms) -> np.ndarray:
        """Current minimum-image length (A) of every initial bond."""
        d = atoms.positions[self.j] - atoms.positions[self.i]
        if atoms.pbc.any():
            d, _ = find_mic(d, atoms.cell, atoms.pbc)
        return np.linalg.norm(d, axis=1)

    def check(self, atoms: Atoms, time_fs: float) -> str | None:
        if len(self.i) == 0:
            return None
        length = self.lengths(atoms)
        if self.max_stretch is not None:
            stretch = length - self.len0
            k = int(np.argmax(stretch))
            if stretch[k] > self.max_stretch:
                return (f"bond {self._name(atoms, k)} stretched by {stretch[k]:.2f} A "
                        f"(> {self.max_stretch} A) from {self.len0[k]:.2f} A")
        if self.max_factor is not None:
            ratio = length / self.len0
            k = int(np.argmax(ratio))
            if ratio[k] > self.max_factor:
                return (f"bond {self._name(atoms, k)} at {ratio[k]:.2f} x its initial "
                        f"{self.len0[k]:.2f} A (> {self.max_factor} x)")
        return None

    def _name(self, atoms: Atoms, k: int) -> str:
        a, b = int(self.i[k]), int(self.j[k])
        return f"{a}-{b} ({atoms[a].symbol}-{atoms[b].symbol})"


class FusionMonitor(Monitor):
    """Two atoms closer than ``fraction`` x the sum of their covalent radii (atom fusion)."""

    name = "fusion"

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = float(fraction)

    def check(self, atoms: Atoms, time_fs: float) -> str | None:
        radii = self.fraction * covalent_radii[atoms.numbers]
        i, j, d = neighbor_list("ijd", atoms, radii)
        if len(d) == 0:
            return None
        k = int(np.argmin(d))
        a, b = int(i[k]), int(j[k])
        return (f"atoms {a} and {b} ({atoms[a].symbol}-{atoms[b].symbol}) at {d[k]:.2f} A "
                f"< {self.fraction} x covalent radii sum")


class DensityMonitor(Monitor):
    """Density outside ``[low, high]`` g/cm^3 (periodic cells only; silent otherwise).

    The default bounds [0.2, 2.0] are seed 003's criterion for molecular liquids. A system
    that already starts outside them (solid copper at 8.9 g/cm^3, LGPS near 2.0) is not
    judged by them: the monitor stays silent (``active`` is False after :meth:`start`) rather
    than fail every such run at t = 0; set ``low``/``high`` for the material at hand.
    """

    name = "density"

    def __init__(self, low: float = 0.2, high: float = 2.0) -> None:
        self.low, self.high = float(low), float(high)
        self.active = True

    def start(self, atoms: Atoms) -> None:
        rho = density_g_cm3(atoms)
        self.active = math.isnan(rho) or self.low <= rho <= self.high
        if not self.active:
            log.warning("density monitor off: the initial density %.3f g/cm^3 is outside [%g, %g]",
                        rho, self.low, self.high)

    def check(self, atoms: Atoms, time_fs: float) -> str | None:
        rho = density_g_cm3(atoms)
        if math.isnan(rho) or not self.active:
            return None
        if not self.low <= rho <= self.high:
            return f"density {rho:.3f} g/cm^3 outside [{self.low}, {self.high}]"
        return None


class FiniteMonitor(Monitor):
    """NaN or infinity in positions, momenta, cell, or stored energy / forces."""

    name = "nan"

    def check(self, atoms: Atoms, time_fs: float) -> str | None:
        arrays = {"positions": atoms.positions, "cell": atoms.cell.array}
        if "momenta" in atoms.arrays:
            arrays["momenta"] = atoms.arrays["momenta"]
        calc = atoms.calc
        results = getattr(calc, "results", {}) if calc is not None else {}
        for key in ("energy", "forces"):
            if key in results:
                arrays[key] = np.asarray(results[key], dtype=float)
        for key, value in arrays.items():
            if not np.all(np.isfinite(value)):
                return f"non-finite {key}"
        return None


class TemperatureMonitor(Monitor):
    """Temperature (K, from the momenta) above ``factor`` x ``target_K`` or above ``max_K``.

    Frames without momenta are skipped. With neither ``target_K`` nor ``max_K`` it never fires.
    """

    name = "temperature"

    def __init__(self, target_K: float | None = None, factor: float = 5.0,
                 max_K: float | None = None) -> None:
        self.target_K, self.factor, self.max_K = target_K, float(factor), max_K

    @property
    def limit_K(self) -> float:
        limits = [x for x in (self.max_K, None if self.target_K is None
                              else self.factor * self.target_K) if x is not None]
        return min(limits) if limits else math.inf

    def check(self, atoms: Atoms, time_fs: float) -> str | None:
        if "momenta" not in atoms.arrays:
            return None
        temp = atoms.get_temperature()
        if not math.isfinite(temp):
            return "non-finite temperature"
        if temp > self.limit_K:
            return f"temperature {temp:.0f} K above {self.limit_K:.0f} K"
        return None


class RDFMonitor(Monitor):
    """MDsim's windowed RDF check (seed 000): the RDF over each ``window_ps`` window is compared
    with a reference RDF; the run has collapsed when ``integral |g - g_ref| dr`` exceeds
    ``threshold`` (A). The reference is the RDF of ``reference_frames`` (e.g. the reference
    trajectory) or, without them, of the first window. Windows do not overlap; a failure is
    dated at the last frame of the offending window.
    """

    name = "rdf"

    def __init__(self, reference_frames: Sequence[Atoms] | None = None, window_ps: float = 1.0,
                 threshold: float = 1.0, rmax: float = 6.0, bins: int = 200) -> None:
        self.reference_frames = reference_frames
        self.window_fs = 1000.0 * float(window_ps)
        self.threshold, self.rmax, self.bins = float(threshold), float(rmax), int(bins)

    def _rdf(self, frames):
        from potlab.analysis.rdf import rdf

        return rdf(frames, rmax=self.rmax, bins=self.bins)

    def start(self, atoms: Atoms) -> None:
        self.reference = self._rdf(list(self.reference_frames)) if self.reference_frames else None
        self.buffer: list[Atoms] = []
        self.window_start: float | None = None
        self.last_error: float | None = None

    def state(self) -> dict:
        return {"reference": self.reference, "buffer": list(self.buffer),
                "window_start": self.window_start, "last_error": self.last_error}

    def restore(self, state: dict | None) -> None:
        if state:
            self.reference, self.buffer = state["reference"], list(state["buffer"])
            self.window_start, self.last_error = state["window_start"], state["last_error"]

    def check(self, atoms: Atoms, time_fs: float) -> str | None:
        from potlab.analysis.rdf import rdf_error

        if self.window_start is None:
            self.window_start = time_fs
        frame = atoms.copy()
        frame.calc = None
        self.buffer.append(frame)
        if time_fs - self.window_start < self.window_fs - 1e-9:
            return None
        current = self._rdf(self.buffer)
        self.buffer, self.window_start = [], None
        if self.reference is None:
            self.reference = current
            return None
        err = rdf_error(current.r, current.g, self.reference.g)["integral"]
        self.last_error = float(err)
        if err > self.threshold:
            return f"RDF error {err:.3f} A over a {self.window_fs / 1000:g} ps window > {self.threshold}"
        return None


def default_monitors(target_K: float | None = None) -> list[Monitor]:
    """Non-finite values, bonds (+0.5 A), fusion (0.5 x covalent radii), density
    [0.2, 2.0] g/cm^3, and, with ``target_K``, a temperature blow-up at 5 x the target."""
    mons: list[Monitor] = [FiniteMonitor(), BondMonitor(), FusionMonitor(), DensityMonitor()]
    if target_K is not None:
        mons.append(TemperatureMonitor(target_K=target_K))
    return mons


@dataclass
class StabilityResult:
    """Outcome of a stability check.

    ``t_stab_ps``: time (ps) of the first failing frame, or the trajectory length when none
    fails; ``reason``: why it failed (None if stable); ``frame``: index of the failing frame;
    ``stable``: no monitor fired; ``monitor``: the name of the monitor that fired.
    """

    t_stab_ps: float
    reason: str | None = None
    frame: int | None = None
    stable: bool = True
    monitor: str | None = None


def frame_time_fs(atoms: Atoms, index: int, timestep_fs: float | None) -> float:
    """``atoms.info["time_fs"]`` if present, else ``timestep_fs * index`` (fs)."""
    if "time_fs" in atoms.info:
        return float(atoms.info["time_fs"])
    if timestep_fs is None:
        raise ValueError(f"frame {index}: field 'time_fs' missing and no timestep_fs given")
    return float(timestep_fs) * index


def check_trajectory(
    frames: Iterable[Atoms] | str | Path,
    timestep_fs: float | None = None,
    monitors: Sequence[Monitor] | None = None,
    reference_frames: Sequence[Atoms] | None = None,
) -> StabilityResult:
    """Run the monitors over stored frames (a list of Atoms or any file ``ase.io.read`` reads)
    and return when and why the trajectory first failed.

    Times come from ``info["time_fs"]`` when present, else ``timestep_fs * index``.
    ``monitors`` defaults to :func:`default_monitors`; ``reference_frames`` adds an
    :class:`RDFMonitor` against their RDF.
    """
    if isinstance(frames, (str, Path)):
        import ase.io

        frames = ase.io.read(frames, ":")
    mons = list(default_monitors() if monitors is None else monitors)
    if reference_frames is not None:
        mons.append(RDFMonitor(reference_frames=reference_frames))
    time_fs = 0.0
    n = 0
    for index, atoms in enumerate(frames):
        time_fs = frame_time_fs(atoms, index, timestep_fs)
        if index == 0:
            for mon in mons:
                mon.start(atoms)
        for mon in mons:
            reason = mon.check(atoms, time_fs)
            if reason is not None:
                return StabilityResult(time_fs / 1000.0, reason, index, False, mon.name)
        n += 1
    if n == 0:
        raise ValueError("check_trajectory: no frames")
    return StabilityResult(time_fs / 1000.0, None, None, True, None)
