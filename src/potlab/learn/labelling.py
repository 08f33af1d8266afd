"""The labelling step: candidates -> labelled frames and failure records, through
:class:`potlab.reference.Labeller` and one :class:`~potlab.reference.LabelStore` per run
(``labels.db``), so a structure labelled once is never sent to the method again (a killed
run that resumes finds its finished labels in the store), and a structure the method
cannot label is recorded with its reason and left out, never fatal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms


@dataclass
class LabelOutcome:
    labelled: list[Atoms]
    failures: list[dict[str, Any]]  # {"index", "reason", "error_type"}
    computed: int
    cached: int


@dataclass(frozen=True)
class LabelStep:
    """Label with ``method`` (name) and ``settings`` through the store at ``store_path``;
    ``scheduler`` a Dask address (None: ``workers`` local processes)."""

    method: str
    settings: dict
    store_path: str
    scheduler: str | None = None
    workers: int = 1

    def method_obj(self):
        from potlab.reference import get_method

        return get_method(self.method, self.settings)

    def __call__(self, candidates: Sequence[Atoms]) -> LabelOutcome:
        if not candidates:
            return LabelOutcome([], [], 0, 0)
        from potlab.reference import Labeller, LabelStore

        Path(self.store_path).parent.mkdir(parents=True, exist_ok=True)
        lab = Labeller(self.method_obj(), store=LabelStore(self.store_path),
                       scheduler=self.scheduler, workers=self.workers)
        res = lab.label(list(candidates))
        fails = [{"index": f.index, "reason": f.reason, "error_type": f.error_type}
                 for f in res.failures]
        return LabelOutcome(res.labelled, fails, res.computed, res.cached)
