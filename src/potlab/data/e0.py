"""Per-element reference energies E0: the energy a potential adds per atom of element Z.

:func:`fit_e0` takes E0 from isolated-atom frames where there are any, and fits the other
elements by least squares of total energy against element counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from potlab.data.errors import DataError
from potlab.data.keys import REF_ENERGY_KEY, SOURCE_FILE_KEY, SOURCE_INDEX_KEY
from potlab.data.subsets import config_type

log = logging.getLogger("potlab.data")


@dataclass
class E0Fit:
    """Per-element reference energies and how they were obtained.

    Attributes
    ----------
    energies: atomic number -> E0 in eV.
    method: ``"isolated"``, ``"least_squares"``, ``"isolated+least_squares"`` or ``"given"``.
    n_frames: frames used.
    rmse_per_atom: RMS of (E - sum of E0) / n_atoms over the non-isolated frames, eV/atom
        (over all frames when every frame is an isolated atom). This is the spread the
        model has to learn, not a fit error to minimise: cohesive energies are in it.
    rank_deficient: the element counts did not determine every E0 (e.g. all frames of
        one composition); the minimum-norm solution was used.
    warnings: human-readable notes (rank deficiency, disagreeing isolated frames).
    """

    energies: dict[int, float]
    method: str
    n_frames: int
    rmse_per_atom: float = float("nan")
    rank_deficient: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able: ``energies`` keyed by atomic number as a string, and
        ``energies_by_symbol`` keyed by element symbol."""
        d = asdict(self)
        d["energies"] = {str(z): float(e) for z, e in sorted(self.energies.items())}
        d["energies_by_symbol"] = {
            chemical_symbols[z]: float(e) for z, e in sorted(self.energies.items())
        }
        d["rmse_per_atom"] = None if np.isnan(self.rmse_per_atom) else self.rmse_per_atom
        return d

    def table(self) -> str:
        """A short human-readable table (the caller decides where it goes)."""
        rmse = (
            "n/a" if np.isnan(self.rmse_per_atom) else f"{self.rmse_per_atom * 1000:.1f} meV/atom"
        )
        lines = [
            f"E0 by {self.method} from {self.n_frames} frames; residual RMS {rmse}"
            + ("; RANK DEFICIENT" if self.rank_deficient else ""),
            f"{'Z':>4}  {'element':<8}{'E0 / eV':>16}",
        ]
        for z, e in sorted(self.energies.items()):
            lines.append(f"{z:>4}  {chemical_symbols[z]:<8}{e:>16.6f}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def e0_from_dict(d: Mapping) -> E0Fit:
    """An :class:`E0Fit` from :meth:`E0Fit.to_dict` output, or from a plain mapping of
    element (atomic number, its string, or symbol) -> E0 in eV (method ``"given"``)."""
    if "energies" in d and isinstance(d["energies"], Mapping):
        return E0Fit(
            energies=_element_map(d["energies"]),
            method=str(d.get("method", "given")),
            n_frames=int(d.get("n_frames", 0)),
            rmse_per_atom=float("nan")
            if d.get("rmse_per_atom") is None
            else float(d["rmse_per_atom"]),
            rank_deficient=bool(d.get("rank_deficient", False)),
            warnings=list(d.get("warnings", [])),
        )
    return E0Fit(energies=_element_map(d), method="given", n_frames=0)


def _element_map(d: Mapping) -> dict[int, float]:
    out = {}
    for key, value in d.items():
        if isinstance(key, str) and not key.lstrip("-").isdigit():
            if key not in atomic_numbers:
                raise ValueError(f"unknown element symbol {key!r} in E0 table")
            z = atomic_numbers[key]
        else:
            z = int(key)
        out[z] = float(value)
    return out


def _energy(atoms: Atoms, i: int) -> float:
    if REF_ENERGY_KEY not in atoms.info:
        raise DataError(
            atoms.info.get(SOURCE_FILE_KEY, "<frames>"),
            "missing energy, needed for the E0 fit",
            frame=atoms.info.get(SOURCE_INDEX_KEY, i),
            field=REF_ENERGY_KEY,
        )
    return float(atoms.info[REF_ENERGY_KEY])


def _is_isolated(atoms: Atoms, isolated_config_types: Sequence[str]) -> bool:
    return len(atoms) == 1 and (
        config_type(atoms) in isolated_config_types or not np.any(atoms.pbc)
    )


def fit_e0(
    frames: Sequence[Atoms],
    *,
    isolated_config_types: Sequence[str] = ("IsolatedAtom", "isolated_atom"),
) -> E0Fit:
    """Fit per-element reference energies E0 (eV) to labelled frames.

    1. Single-atom frames whose ``config_type`` is in ``isolated_config_types``, or
       single-atom non-periodic frames, give E0[Z] directly (mean if several).
    2. Elements without such a frame are fitted by least squares of
       ``E - sum(known E0)`` against element counts over the other frames
       (``numpy.linalg.lstsq``). When the counts do not determine them (rank deficient,
       e.g. every frame the same composition) the minimum-norm solution is used and
       ``rank_deficient`` is set.

    Frames must carry ``info["REF_energy"]`` (eV). A :class:`~potlab.data.lazy.LazyFrames`
    is fitted by :func:`fit_e0_streaming` (the same fit, energies read in chunks).
    """
    if not frames:
        raise ValueError("fit_e0 needs at least one frame")
    if getattr(frames, "lazy", False):
        return fit_e0_streaming(frames, isolated_config_types=isolated_config_types)
    energies = np.array([_energy(a, i) for i, a in enumerate(frames)])
    isolated = np.array([_is_isolated(a, isolated_config_types) for a in frames])
    notes: list[str] = []

    e0: dict[int, float] = {}
    by_z: dict[int, list[float]] = {}
    for atoms, e, iso in zip(frames, energies, isolated, strict=True):
        if iso:
            by_z.setdefault(int(atoms.numbers[0]), []).append(float(e))
    for z, values in sorted(by_z.items()):
        e0[z] = float(np.mean(values))
        if np.ptp(values) > 1e-6:
            notes.append(
                f"{len(values)} isolated {chemical_symbols[z]} frames differ by "
                f"{np.ptp(values):.3g} eV; their mean is used"
            )

    rest = [i for i in range(len(frames)) if not isolated[i]]
    elements = sorted({int(z) for i in rest for z in frames[i].numbers})
    unknown = [z for z in elements if z not in e0]
    rank_deficient = False
    if unknown:
        rest_frames = [frames[i] for i in rest]
        counts = _counts(rest_frames, unknown)  # [n_rest, n_unknown]
        known_z = sorted(e0)
        known_part = _counts(rest_frames, known_z) @ np.array([e0[z] for z in known_z])
        target = energies[rest] - known_part  # [n_rest], eV
        solution, _, rank, _ = np.linalg.lstsq(counts, target, rcond=None)
        if rank < len(unknown):
            rank_deficient = True
            notes.append(_rank_note(rank, unknown))
        e0.update({z: float(v) for z, v in zip(unknown, solution, strict=True)})
    if not e0:
        raise ValueError("no elements found to fit E0")
    method = _method(by_z, unknown)

    used = rest if rest else list(range(len(frames)))
    residual = (energies[used] - apply_e0([frames[i] for i in used], e0)) / np.array(
        [len(frames[i]) for i in used]
    )
    fit = E0Fit(
        energies=dict(sorted(e0.items())),
        method=method,
        n_frames=len(frames),
        rmse_per_atom=float(np.sqrt(np.mean(residual**2))),
        rank_deficient=rank_deficient,
        warnings=notes,
    )
    for note in notes:
        log.warning("E0 fit: %s", note)
    log.info("E0 fit by %s over %d frames", method, len(frames))
    return fit


def _counts(frames: Sequence[Atoms], elements: Sequence[int]) -> np.ndarray:
    """Element counts, shape (n_frames, n_elements)."""
    column = {z: j for j, z in enumerate(elements)}
    out = np.zeros((len(frames), len(elements)))
    for i, atoms in enumerate(frames):
        for z in atoms.numbers:
            if int(z) in column:
                out[i, column[int(z)]] += 1
    return out


def apply_e0(frames: Sequence[Atoms], e0: E0Fit | Mapping[int, float]) -> np.ndarray:
    """Sum of E0 over the atoms of each frame, shape (n_frames,), eV.

    Raises ValueError naming an element that has no E0.
    """
    table = e0.energies if isinstance(e0, E0Fit) else _element_map(e0)
    out = np.zeros(len(frames))
    for i, atoms in enumerate(frames):
        try:
            out[i] = sum(table[int(z)] for z in atoms.numbers)
        except KeyError as err:
            z = int(err.args[0])
            raise ValueError(
                f"frame {i}: no E0 for element {chemical_symbols[z]} (Z={z}); "
                f"E0 is known for {', '.join(chemical_symbols[k] for k in sorted(table))}"
            ) from None
    return out


def fit_e0_streaming(frames, *, isolated_config_types: Sequence[str] = ("IsolatedAtom", "isolated_atom"),
                     energies: np.ndarray | None = None) -> E0Fit:
    """:func:`fit_e0` of a :class:`~potlab.data.lazy.LazyFrames`: the energies are read in
    chunks (or given, shape (n_frames,) eV), the element counts come from the frames'
    compositions, and the least squares runs over compositions weighted by how many
    frames have each, which has the normal equations (so the solution, also the
    minimum-norm one) of the fit over every frame."""
    e = frames.energies() if energies is None else np.asarray(energies, dtype=float)
    return fit_e0_compositions(
        e, frames.comp, frames.compositions, frames.n_atoms,
        frames.single_nonperiodic
        | (np.isin(frames.config_types(), list(isolated_config_types)) & (frames.n_atoms == 1)),
    )


def fit_e0_compositions(energies: np.ndarray, comp: np.ndarray, compositions: Sequence[np.ndarray],
                        n_atoms: np.ndarray, isolated: np.ndarray) -> E0Fit:
    """E0 as :func:`fit_e0` from per-frame arrays: ``energies`` (eV), ``comp`` (index into
    ``compositions``, each the atomic numbers of a frame), ``n_atoms`` and ``isolated``
    (single atoms that define E0 directly), all shape (n_frames,)."""
    n = len(energies)
    if n == 0:
        raise ValueError("fit_e0 needs at least one frame")
    comp = np.asarray(comp, dtype=np.int64)
    isolated = np.asarray(isolated, dtype=bool)
    notes: list[str] = []
    e0: dict[int, float] = {}
    iso_z = np.array([int(compositions[c][0]) for c in comp[isolated]], dtype=int)
    by_z = sorted(set(iso_z.tolist()))
    for z in by_z:
        values = energies[isolated][iso_z == z]
        e0[z] = float(np.mean(values))
        if np.ptp(values) > 1e-6:
            notes.append(f"{len(values)} isolated {chemical_symbols[z]} frames differ by "
                         f"{np.ptp(values):.3g} eV; their mean is used")
    rest = np.flatnonzero(~isolated)
    used_comps = np.unique(comp[rest])
    elements = sorted({int(z) for c in used_comps.tolist() for z in compositions[c]})
    unknown = [z for z in elements if z not in e0]
    rank_deficient = False
    if unknown:
        n_c = np.bincount(comp[rest], minlength=len(compositions))[used_comps].astype(float)
        mean_c = np.bincount(comp[rest], weights=energies[rest],
                             minlength=len(compositions))[used_comps] / n_c
        counts = composition_counts([compositions[c] for c in used_comps], unknown)
        known_z = sorted(e0)
        known = composition_counts([compositions[c] for c in used_comps], known_z) @ np.array(
            [e0[z] for z in known_z])
        w = np.sqrt(n_c)
        solution, _, rank, _ = np.linalg.lstsq(counts * w[:, None], (mean_c - known) * w, rcond=None)
        if rank < len(unknown):
            rank_deficient = True
            notes.append(_rank_note(rank, unknown))
        e0.update({z: float(v) for z, v in zip(unknown, solution, strict=True)})
    if not e0:
        raise ValueError("no elements found to fit E0")
    method = _method(by_z, unknown)
    used = rest if rest.size else np.arange(n)
    table = composition_counts(compositions, sorted(e0)) @ np.array([e0[z] for z in sorted(e0)])
    residual = (energies[used] - table[comp[used]]) / np.asarray(n_atoms, dtype=float)[used]
    for note in notes:
        log.warning("E0 fit: %s", note)
    log.info("E0 fit by %s over %d frames (streamed)", method, n)
    return E0Fit(energies=dict(sorted(e0.items())), method=method, n_frames=n,
                 rmse_per_atom=float(np.sqrt(np.mean(residual**2))),
                 rank_deficient=rank_deficient, warnings=notes)


def _rank_note(rank: int, unknown) -> str:
    """The warning of a least-squares E0 fit whose element counts do not determine E0."""
    return (f"element counts have rank {rank} < {len(unknown)} elements to fit "
            f"({', '.join(chemical_symbols[z] for z in unknown)}): E0 is not determined "
            "by these frames (e.g. a single composition); the minimum-norm solution is "
            "used. Add isolated atoms or other compositions.")


def _method(by_z, unknown) -> str:
    """How E0 was found: from isolated atoms, least squares, or both."""
    if by_z and unknown:
        return "isolated+least_squares"
    return "isolated" if by_z else "least_squares"


def composition_counts(compositions: Sequence[np.ndarray], elements: Sequence[int]) -> np.ndarray:
    """Element counts of each composition, shape (n_compositions, n_elements)."""
    col = {z: j for j, z in enumerate(elements)}
    out = np.zeros((len(compositions), len(elements)))
    for i, numbers in enumerate(compositions):
        for z in np.asarray(numbers).tolist():
            if int(z) in col:
                out[i, col[int(z)]] += 1
    return out
