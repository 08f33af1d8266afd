"""Architecture registry: name -> class with a pydantic ``Config`` of hyper-parameters."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

_REGISTRY: dict[str, type[torch.nn.Module]] = {}
_LOADED = False


class ModelConfig(BaseModel):
    """Hyper-parameters every architecture shares; subclasses add their own."""

    model_config = ConfigDict(extra="forbid")
    cutoff: float = 5.0


def register(name: str):
    """Class decorator: ``@register("schnet")``. The class must define ``Config``
    (a :class:`ModelConfig` subclass) and accept ``(config, elements, avg_num_neighbors)``."""

    def deco(cls):
        if not (isinstance(getattr(cls, "Config", None), type) and issubclass(cls.Config, ModelConfig)):
            raise TypeError(f"model {name!r} must define a Config(ModelConfig) class")
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import potlab.models as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("registry", "radial"):
            importlib.import_module(f"potlab.models.{mod.name}")
    _LOADED = True


def available() -> dict[str, type]:
    """Registered architectures, name -> class."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_model_class(name: str) -> type:
    if name not in _REGISTRY and name.isidentifier():
        # a built-in architecture lives in the module of its name: import only that one (a
        # SchNet or ANI process need not pay for importing mace and e3nn)
        try:
            importlib.import_module(f"potlab.models.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"potlab.models.{name}":
                raise
    if name in _REGISTRY:
        return _REGISTRY[name]
    models = available()
    if name not in models:
        raise KeyError(f"model.name: unknown architecture {name!r}; available: {', '.join(models)}")
    return models[name]


def model_config(name: str, params: dict[str, Any]) -> ModelConfig:
    """Validate hyper-parameters for ``name``; an unknown key raises naming it.

    ``params["preset"]`` names one of the class's ``presets`` (e.g. "seed000": 128
    features and a 6 A cutoff, as seed 000 standardised); explicit keys override it.
    """
    cls = get_model_class(name)
    params = dict(params)
    preset = params.pop("preset", None)
    if preset is not None:
        presets = getattr(cls, "presets", {})
        if preset not in presets:
            raise ValueError(f"model.preset: {name} has no preset {preset!r}; available: {', '.join(presets)}")
        params = {**presets[preset], **params}
    try:
        return cls.Config(**params)
    except ValidationError as err:
        msgs = []
        for e in err.errors():
            loc = ".".join(str(x) for x in ("model", *e["loc"]))
            msgs.append(f"{loc}: {e['msg']}")
        raise ValueError("; ".join(msgs)) from None


def build_model(
    name: str, params: dict[str, Any], elements: list[int], avg_num_neighbors: float = 10.0
) -> torch.nn.Module:
    """Build architecture ``name`` for the atomic numbers ``elements``.

    The class is called as ``cls(config, elements=..., avg_num_neighbors=...)`` and must
    set ``self.config`` (its validated Config) and ``self.cutoff`` (Angstrom).
    """
    cls = get_model_class(name)
    cfg = model_config(name, params)
    return cls(cfg, elements=sorted(int(z) for z in elements), avg_num_neighbors=float(avg_num_neighbors))
