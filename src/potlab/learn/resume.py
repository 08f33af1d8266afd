"""What a resumed learn run must share with the run it resumes: ``DIR/config.json`` keeps
the config a run was started with, and a rerun with another one is refused naming the keys
that differ, except the assessments and the worker counts (they change what is judged or
where the work runs, not what the loop computes) and the convergence limits (when to stop:
a finished run rerun with more iterations or a larger label budget goes on from its last
iteration, see :meth:`potlab.learn.loop.LearningLoop.run`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from potlab.learn.config import LearnConfig, LearnConfigError


def loop_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the run it resumes: the config without the
    assessments (they do not change what the loop does), without the worker counts
    (where the work runs, not what it computes) and without the convergence limits (when
    the loop stops, not what an iteration computes), the explorer's MD protocol with its
    defaults filled in."""
    out = json.loads(json.dumps(config))
    out.pop("assess", None)
    out.pop("convergence", None)
    explore = out.get("explore")
    if isinstance(explore, dict) and isinstance(explore.get("protocol"), dict):
        # the MD protocol is a free mapping in the config: compared with its defaults
        # filled, a key written out at its default value is the same protocol
        from potlab.md.protocol import MDProtocol
        from potlab.strict import as_now

        explore["protocol"] = as_now(explore["protocol"], MDProtocol) or explore["protocol"]

    out.get("reference", {}).pop("workers", None)
    if isinstance(out.get("score"), dict):
        out["score"].pop("workers", None)
    com = out.get("train", {}).get("committee")
    if isinstance(com, dict):
        com.pop("workers", None)
    return out


def with_defaults(old: dict[str, Any], cfg: LearnConfig) -> dict[str, Any]:
    """``old`` (a ``config.json`` as written) with the fields it lacks at their defaults: a
    run started before a field existed ran with the behaviour that field's default keeps.
    ``old`` as it is when it no longer validates (a setting since removed: it differs)."""
    from potlab.strict import as_now

    return as_now(old, type(cfg), given={"base_dir": cfg.base_dir}) or old


def check_run_config(cfg: LearnConfig, out: Path) -> None:
    """``out/config.json`` keeps the config a run was started with: another one is refused
    naming the keys that differ, unless only :func:`loop_settings`' exceptions changed
    (then the file is brought up to date)."""
    from potlab.atomic import write_text_atomic

    path = out / "config.json"
    now = cfg.model_dump(mode="json", exclude={"base_dir"})
    if path.exists():
        old = json.loads(path.read_text())
        loop_old, loop_now = loop_settings(with_defaults(old, cfg)), loop_settings(now)
        if loop_old != loop_now:
            from potlab.md.protocol import differing_keys

            keys = ", ".join(differing_keys(loop_old, loop_now)) or "?"
            raise LearnConfigError(f"{out}: this run was started with another config "
                                   f"({keys} differ): use another --out")
        if old == now:
            return
    write_text_atomic(json.dumps(now, indent=1), path)
