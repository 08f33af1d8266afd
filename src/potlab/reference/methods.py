"""Reference methods: what computes the labels, as a small picklable description.

A :class:`Method` names a method, holds its settings (plain data, so it pickles to
local or Dask workers and hashes into the cache key) and builds an ASE calculator for one
structure. Built in:

- ``gfn2-xtb`` / ``gfn1-xtb``: tblite (GFN2 for molecules; GFN1 also for periodic
  cells). Charge and spin come from ``atoms.info["charge"]`` (e) and
  ``atoms.info["spin"]`` (unpaired electrons), else from the settings.
- ``chgnet``: the CHGNet foundation model (weights ship in the ``chgnet`` wheel).
- ``sevennet``: SevenNet-0 (``sevenn`` 0.10.4, the last release that accepts mace-torch's
  e3nn 0.4.4 pin; the weights ship in its wheel).
- ``module:Class``: any ASE calculator by import path, with keyword arguments.

Energies are in eV, forces eV/A, stress eV/A^3 (ASE's conventions).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from potlab.reference.hashing import settings_hash

_XTB = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
_FOUNDATION = {"chgnet": "chgnet", "sevennet": "sevenn"}


@functools.lru_cache(maxsize=64)
def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Method:
    """A reference method: ``name`` (``gfn2-xtb``, ``gfn1-xtb``, ``chgnet``, ``sevennet``
    or ``module:Class``) and ``settings`` (keyword arguments; for xTB also ``charge``
    and ``spin`` defaults). Build one with :func:`get_method`."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # settings is a dict
        return hash(self.key)

    @property
    def key(self) -> str:
        """Cache key of the method and its settings (16 hex characters)."""
        return settings_hash(self.name, self.settings)

    def version(self) -> str:
        """The version of the package that implements the method."""
        if self.name in _XTB:
            return f"tblite {_package_version('tblite')}"
        if self.name in _FOUNDATION:
            pkg = _FOUNDATION[self.name]
            return f"{pkg} {_package_version(pkg)}"
        top = self.name.split(":", 1)[0].split(".", 1)[0]
        return f"{top} {_package_version(top)}"

    def charge_spin(self, atoms: Atoms) -> tuple[float, float]:
        """Total charge (e) and unpaired electrons of ``atoms`` for this method: from
        ``atoms.info``, else the settings, else 0. Only xTB uses them."""
        if self.name not in _XTB:
            return 0.0, 0.0
        charge = atoms.info.get("charge", self.settings.get("charge", 0))
        spin = atoms.info.get("spin", self.settings.get("spin", 0))
        return float(charge), float(spin)

    def calculator(self, atoms: Atoms) -> Calculator:
        """A fresh (or, for foundation models, a per-process cached) ASE calculator."""
        if self.name in _XTB:
            return _xtb_calculator(self, atoms)
        if self.name == "chgnet":
            return _chgnet(self.settings.get("model", "0.3.0"))
        if self.name == "sevennet":
            return _sevennet(self.settings.get("model", "7net-0"))
        module, _, cls = self.name.partition(":")
        try:
            klass = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"method {self.name!r}: cannot import {cls!r} from {module!r}: {exc}")
        return klass(**self.settings)


def _xtb_calculator(method: Method, atoms: Atoms) -> Calculator:
    from tblite.ase import TBLite

    if method.name == "gfn2-xtb" and atoms.pbc.any() and not method.settings.get("allow_pbc"):
        raise ValueError("gfn2-xtb is for molecules here; use gfn1-xtb for periodic cells "
                         "(or settings allow_pbc=true)")
    charge, spin = method.charge_spin(atoms)
    kwargs = {k: v for k, v in method.settings.items()
              if k not in ("charge", "spin", "allow_pbc")}
    return TBLite(method=_XTB[method.name], charge=charge, multiplicity=round(spin) + 1,
                  verbosity=0, **kwargs)


@functools.lru_cache(maxsize=2)
def _chgnet(model: str) -> Calculator:
    from chgnet.model import CHGNet, CHGNetCalculator

    return CHGNetCalculator(model=CHGNet.load(model_name=model, verbose=False, use_device="cpu"),
                            use_device="cpu")


@functools.lru_cache(maxsize=2)
def _sevennet(model: str) -> Calculator:
    try:
        from sevenn.calculator import SevenNetCalculator
    except ImportError as exc:
        raise ImportError("method 'sevennet' needs the 'sevenn' package "
                          "(pip install sevenn==0.10.4, see requirements-reference.txt)") from exc
    return SevenNetCalculator(model, device="cpu")


def get_method(name: str, settings: dict[str, Any] | None = None, **kwargs: Any) -> Method:
    """The method called ``name`` with ``settings`` (and/or keyword arguments).

    Raises ValueError for an unknown name (a name with ``:`` is an import path and is
    checked when its calculator is first built).
    """
    name = name.strip()
    merged = {**(settings or {}), **kwargs}
    key = name.lower()
    if key in _XTB or key in _FOUNDATION:
        return Method(key, merged)
    if ":" in name:
        return Method(name, merged)
    raise ValueError(f"unknown reference method {name!r}: choose gfn2-xtb, gfn1-xtb, chgnet, "
                     "sevennet or an ASE calculator as 'module:Class'")


METHODS = (*_XTB, *_FOUNDATION)
