"""Validated configuration files: the strict pydantic base every config model derives from,
and the one formatting of its errors (``config.yaml: training.lerning_rate: unknown key``).

Used by :mod:`potlab.train.config` (and meant for every YAML a user writes: MD protocols,
studies), so that an unknown key, a wrong type or a missing section reads the same
everywhere: the file, the dotted key, what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")


def as_now(record: dict[str, Any], model: type[BaseModel], *, given: dict[str, Any] | None = None,
           exclude: Iterable[str] = ()) -> dict[str, Any] | None:
    """A settings record a run wrote (``config.json``, a protocol, an assessment's spec) read
    as ``model`` is now: the fields it lacks at their defaults, since a run made before a
    setting existed ran with the behaviour its default keeps. ``given`` supplies fields a
    record does not keep (a base directory); they and ``exclude`` are left out of the JSON
    dict returned. None when the record no longer validates (a setting since removed or
    renamed: it differs from any settings now)."""
    given = given or {}
    try:
        full = model.model_validate({**record, **given})
    except (ValidationError, TypeError):
        return None
    dumped = full.model_dump(mode="json", exclude=set(given) | set(exclude))
    return json.loads(json.dumps(dumped))


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: ``{source}: {dotted.key}: {message}``; an unknown key reads
    ``unknown key 'name' (Extra inputs are not permitted)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"] if not str(x).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key {e['loc'][-1]!r} ({msg})"
        elif e["type"] == "missing":
            msg = "missing (required)"
        lines.append(f"{source}: {loc or '<top>'}: {msg}")
    return "\n".join(lines)


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str = "config") -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``error(message)`` naming the file when it is
    missing, not YAML, or not a mapping. An empty file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read: {err}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    return raw
