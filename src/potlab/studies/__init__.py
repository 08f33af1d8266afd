"""Declarative studies: a YAML file -> stages (reference, train, evaluate, md, analyze,
report), each job cached by the hash of its inputs, run through :mod:`potlab.executor`.

The bundled ``li_conductors`` study is seed 000's: train every architecture on LGPS
reference frames, judge them by the MD they make on LGPS and on transfer materials.
"""

from __future__ import annotations

from pathlib import Path

from potlab.studies.config import Study, StudyError, bundled_studies, load_study, parse_study
from potlab.studies.engine import RunSummary, run_study, study_status


def write_study_report(out: str | Path) -> Path:
    """Rewrite ``results.json``, ``report.md`` and ``report.html`` of a study directory from
    what its jobs have finished."""
    from potlab.studies.results import write_results

    out = Path(out)
    (out / "report").mkdir(parents=True, exist_ok=True)
    write_results({}, out / "report", out)
    return out / "report.html"


__all__ = ["RunSummary", "Study", "StudyError", "bundled_studies", "load_study", "parse_study",
           "run_study", "study_status", "write_study_report"]
