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

A method that cannot be built here (its package is missing, a ``module:Class`` that does not
import, settings its class refuses) is bad input, not a per-structure failure:
:meth:`Method.check` raises :class:`MethodUnavailable` before anything is labelled or cached.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from potlab.errors import InputError, require_extra
from potlab.quiet import third_party_output
from potlab.reference.hashing import settings_hash

_XTB = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}
_FOUNDATION = {"chgnet": "chgnet", "sevennet": "sevenn"}


class MethodUnavailable(InputError):
    """A reference method that cannot be built in this environment (names the method)."""


#: error types of a stored record that meant "the method could not be built", not "this
#: structure failed": such records are never served from the store (older potlab stored them)
UNAVAILABLE_ERRORS = ("MethodUnavailable", "MissingExtra", "ImportError", "ModuleNotFoundError")


def was_unavailable(record: dict[str, Any]) -> bool:
    """True for a failure record that says the method could not be built at the time."""
    kind, reason = record.get("error_type", ""), record.get("reason", "")
    return kind in UNAVAILABLE_ERRORS or (kind == "ValueError" and "cannot import" in reason)


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

    def check(self) -> None:
        """Raise :class:`MethodUnavailable` (naming the method and what to do) when this
        method cannot be built here; a ``module:Class`` is built once with its settings."""
        what = f"method {self.name!r}"
        try:
            if self.name in _XTB:
                require_extra("tblite.ase", "reference", what)
            elif self.name in _FOUNDATION:
                if self.name == "sevennet":
                    _import_e3nn()
                require_extra(f"{_FOUNDATION[self.name]}.calculator"
                              if self.name == "sevennet" else "chgnet.model", "reference", what)
            else:
                self._class()(**self.settings)
        except MethodUnavailable:
            raise
        except InputError as err:  # MissingExtra
            raise MethodUnavailable(str(err)) from None
        except (TypeError, ValueError) as err:
            raise MethodUnavailable(f"{what}: cannot be built with settings "
                                    f"{self.settings}: {err}") from None

    def _class(self) -> type:
        module, _, cls = self.name.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise MethodUnavailable(f"method {self.name!r}: cannot import {cls!r} from "
                                    f"{module!r}: {exc}") from None

    def calculator(self, atoms: Atoms) -> Calculator:
        """A fresh (or, for foundation models, a per-process cached) ASE calculator."""
        if self.name in _XTB:
            return _xtb_calculator(self, atoms)
        if self.name == "chgnet":
            return _chgnet(self.settings.get("model", "0.3.0"))
        if self.name == "sevennet":
            return _sevennet(self.settings.get("model", "7net-0"))
        return self._class()(**self.settings)


def _xtb_calculator(method: Method, atoms: Atoms) -> Calculator:
    TBLite = require_extra("tblite.ase", "reference", f"method {method.name!r}").TBLite

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
    chgnet = require_extra("chgnet.model", "reference", "method 'chgnet'")
    with third_party_output():  # CHGNet prints its size and device
        return chgnet.CHGNetCalculator(
            model=chgnet.CHGNet.load(model_name=model, verbose=False, use_device="cpu"),
            use_device="cpu")


def _import_e3nn() -> None:
    """sevenn imports e3nn, whose import needs potlab's scoped torch.load workaround."""
    from potlab.models.e3nn_import import import_mace_and_e3nn

    import_mace_and_e3nn()


@functools.lru_cache(maxsize=2)
def _sevennet(model: str) -> Calculator:
    _import_e3nn()
    sevenn = require_extra("sevenn.calculator", "reference",
                           "method 'sevennet' (sevenn==0.10.4, see requirements-reference.txt)")
    with third_party_output():
        return sevenn.SevenNetCalculator(model, device="cpu")


def get_method(name: str, settings: dict[str, Any] | None = None, **kwargs: Any) -> Method:
    """The method called ``name`` with ``settings`` (and/or keyword arguments).

    Raises MethodUnavailable for an unknown name (a name with ``:`` is an import path,
    checked by :meth:`Method.check`).
    """
    name = name.strip()
    merged = {**(settings or {}), **kwargs}
    key = name.lower()
    if key in _XTB or key in _FOUNDATION:
        return Method(key, merged)
    if ":" in name:
        return Method(name, merged)
    raise MethodUnavailable(f"unknown reference method {name!r}: choose gfn2-xtb, gfn1-xtb, "
                            "chgnet, sevennet or an ASE calculator as 'module:Class'")


METHODS = (*_XTB, *_FOUNDATION)
