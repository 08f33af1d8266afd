"""The append-only record of finished steps (DP-GEN's record file, done right).

``record.jsonl`` in the run directory holds one JSON line per finished step:
``{"iteration": 2, "step": "label", "result": {...}, "finished": "2025-..."}``. A step
writes its outputs (atomically) first and appends its line last, flushed and fsynced; a
line is never rewritten. A kill at any moment therefore leaves every finished step on
record and at most the step in flight unrecorded: a rerun skips what is recorded and runs
the step in flight again, which resumes from its own state (training and MD checkpoints,
the label store). A last line torn by a kill is ignored, and cut off when the record is
next opened (appended to, it would join the next line and hide it from every reader).

A run is extended by rerunning it with other convergence limits: the ``finished`` line of its
last iteration then stays in the file, superseded by the steps that follow it (the loop went
on from that iteration), and a later stop appends another ``finished`` line.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD = "record.jsonl"
#: setup steps run once, as iteration -1
SETUP_STEPS = ("structure", "initial_data", "reference_run")
#: the steps of one iteration, in order
ITERATION_STEPS = ("train", "explore", "measure", "score", "select", "augment", "label", "merge")


@dataclass(frozen=True)
class Entry:
    iteration: int
    step: str
    result: dict[str, Any]
    finished: str


class Record:
    """Read and append ``DIR/record.jsonl``."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / RECORD
        self.entries: list[Entry] = read_record(self.path)
        self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        """Drop what follows the last whole line (a line torn by a kill): appended to, it
        would join the next line and hide it and every line after it from a reader."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = 0
        for _ in self.entries:
            end = data.index(b"\n", end) + 1
        if end < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())

    def get(self, iteration: int, step: str) -> dict[str, Any] | None:
        """The result of a finished step (of ``finished``, its last line), or None."""
        for e in reversed(self.entries):
            if e.iteration == iteration and e.step == step:
                return e.result
        return None

    def finished(self) -> str | None:
        """Why the run stopped: the last ``finished`` line's reason, unless an iteration step
        recorded after it says the loop went on from there (an extended run), else None."""
        for e in reversed(self.entries):
            if e.step == "finished":
                return str(e.result["reason"])
            if e.step in ITERATION_STEPS:
                return None
        return None

    def done(self, iteration: int, step: str) -> bool:
        return self.get(iteration, step) is not None

    def append(self, iteration: int, step: str, result: dict[str, Any]) -> dict[str, Any]:
        """Record a finished step (one line, flushed to disk before returning). Only
        ``finished`` may be recorded again (a rerun with other limits stopped there again,
        for another reason)."""
        if step != "finished" and self.done(iteration, step):
            raise RuntimeError(f"{self.path}: iteration {iteration} step {step} is already recorded")
        finished = time.strftime("%Y-%m-%dT%H:%M:%S")
        line = json.dumps({"iteration": iteration, "step": step, "result": result,
                           "finished": finished}, sort_keys=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.entries.append(Entry(iteration, step, result, finished))
        return result

    def iterations(self) -> list[int]:
        return sorted({e.iteration for e in self.entries if e.iteration >= 0})

    def next_step(self, members: bool = False) -> tuple[int, str] | None:
        """The first step not on record after the last recorded one (the step in flight
        or next), or None when the record says the run finished. ``members``: the run
        assesses every member after ``measure``."""
        if self.finished() is not None:
            return None
        for s in SETUP_STEPS:
            if not self.done(-1, s):
                return -1, s
        it = max(self.iterations(), default=0)
        steps = ITERATION_STEPS
        if members:
            k = steps.index("measure") + 1
            steps = (*steps[:k], "members", *steps[k:])
        for s in steps:
            if not self.done(it, s):
                return it, s
        return it + 1, steps[0]


def read_record(path: str | os.PathLike) -> list[Entry]:
    """Every whole line of a record file (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    entries = []
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn by a kill mid-write: the step was not finished
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                break
            entries.append(Entry(int(raw["iteration"]), str(raw["step"]), raw["result"],
                                 raw.get("finished", "")))
    return entries
