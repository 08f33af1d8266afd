"""One calculator resolution for every command: a name a user types -> an ASE calculator.

``resolve_calculator(spec, calc_kwargs, dtype, atoms)`` accepts

- a potlab potential or committee file (``model.pt``, ``committee.pt``): its calculator
  (``dtype`` float32/float64 casts it; it takes no keyword arguments);
- a reference method known to :func:`potlab.reference.methods.get_method`
  (``gfn2-xtb``, ``gfn1-xtb``, ``chgnet``, ``sevennet``), built with ``calc_kwargs`` as its
  settings;
- ``module:Class``: any ASE calculator class, built with ``calc_kwargs``.

Bad input raises :class:`potlab.errors.InputError` (a ValueError) with one line naming the
spec and the problem: no such file, not a potlab file, an unknown name, a class that cannot
be imported, a keyword argument the calculator does not take.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator

from potlab.errors import InputError

_METHODS = ("gfn2-xtb", "gfn1-xtb", "chgnet", "sevennet")


def _check_kwargs(what: str, factory, kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments ``factory`` does not accept (when its signature says)."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())
    known = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        defaults = getattr(factory, "default_parameters", None)
        if not (isinstance(factory, type) and issubclass(factory, Calculator) and defaults):
            return  # **kwargs and nothing that lists them: let the call decide
        # an ASE calculator passes **kwargs to Calculator.set: its parameters are these
        base = inspect.signature(Calculator.__init__).parameters
        known |= set(defaults) | {k for k in base if k not in ("self", "kwargs")}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise InputError(f"{what}: unknown keyword argument(s) {', '.join(map(repr, unknown))} "
                         f"(accepted: {', '.join(sorted(known - {'self'})) or 'none'})")


def _build(what: str, factory, kwargs: dict[str, Any]):
    _check_kwargs(what, factory, kwargs)
    try:
        return factory(**kwargs)
    except TypeError as err:  # a bad keyword the signature did not reveal
        raise InputError(f"{what}: cannot build it with {kwargs}: {err}") from None


def resolve_calculator(spec: str, calc_kwargs: dict[str, Any] | None = None,
                       dtype: str | None = None, atoms: Atoms | None = None,
                       device: str | None = None) -> Calculator:
    """The ASE calculator ``spec`` names (see the module docstring). ``atoms`` is the
    structure it will run on (xTB reads its charge and spin from it). ``device`` (cpu,
    cuda, cuda:N, auto; default cpu) places a potlab potential or committee."""
    spec = str(spec).strip()
    kwargs = dict(calc_kwargs or {})
    if not isinstance(calc_kwargs or {}, dict):
        raise InputError(f"{spec}: calculator keyword arguments must be a mapping, got "
                         f"{type(calc_kwargs).__name__}")
    path = Path(spec)
    if path.exists() or spec.endswith((".pt", ".pth")):
        if kwargs:
            raise InputError(f"{spec}: a potlab potential takes no calculator keyword arguments "
                             f"(got {', '.join(map(repr, kwargs))})")
        return load_potential(spec, dtype, device).calculator()
    if dtype is not None:
        raise InputError(f"{spec}: dtype applies to potlab potentials only")
    if device is not None:
        raise InputError(f"{spec}: device applies to potlab potentials only (a method takes "
                         f"its own settings in calc_kwargs)")
    if spec.lower() in _METHODS:
        from potlab.reference.methods import get_method

        method = get_method(spec, kwargs)
        extra = sorted(set(kwargs) - {"model"})
        if method.name in ("chgnet", "sevennet") and extra:
            raise InputError(f"{spec}: unknown setting(s) {', '.join(map(repr, extra))} "
                             "(accepted: model)")
        try:
            return method.calculator(atoms if atoms is not None else Atoms())
        except TypeError as err:
            raise InputError(f"{spec}: cannot build it with {kwargs}: {err}") from None
    if ":" in spec:
        module, _, name = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise InputError(f"{spec}: cannot import {name!r} from {module!r}: {err}") from None
        return _build(spec, cls, kwargs)
    raise InputError(f"{spec}: no such potential file, and not a method name "
                     f"({', '.join(_METHODS)}) or an ASE calculator as module:Class")


def load_potential(spec: str, dtype: str | None = None, device: str | None = None):
    """A potlab Potential or Committee from a file on ``device`` (default cpu); InputError
    when it is not one."""
    import potlab

    path = Path(spec)
    if not path.is_file():
        raise InputError(f"{spec}: no such potential file")
    try:
        return potlab.load(path, dtype=dtype, device=device or "cpu")
    except InputError:
        raise
    except (ValueError, RuntimeError, KeyError, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{spec}: not a potlab potential or committee file: {first[:200]}") from None


__all__ = ["load_potential", "resolve_calculator"]
