"""The measure step: an iteration's tracked quantity (the best member's barrier) against
the reference's, from the explorer's own pulls and, with ``measure.repeats``, more pulls of
the best member with the seeds after them (``iter_NNN/measure``), with the error's standard
error when both sides pulled more than once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from potlab.learn.config import LearnConfig
from potlab.learn.explorers import SteeredExplorer, error_standard_error, mean_and_sem
from potlab.learn.selectors import KCAL_MOL_IN_EV


def measure_tracked(cfg: LearnConfig, explore: dict[str, Any], reference: dict[str, Any],
                    best, start, it_dir: Path) -> dict[str, Any]:
    """``explore`` and ``reference``: the iteration's explore and the setup's reference-run
    records; ``best``: a callable giving the best member's potential (loaded only when the
    measure pulls it). Returns the measure record without the test errors and the stop."""
    value, ref_value = explore["tracked_eV"], reference.get("value_eV")
    each = explore.get("tracked_each_eV")
    more = cfg.measure_extra()
    if more is not None:
        each = (each or [value]) + SteeredExplorer(more).barriers(
            start, best().calculator(), Path(it_dir) / "measure")
        value = None if None in each else mean_and_sem(each)[0]
    error = None if value is None or ref_value is None else float(value - ref_value)
    out: dict[str, Any] = {"tracked_eV": value, "reference_eV": ref_value, "error_eV": error,
                           "error_kcal_mol": None if error is None else error / KCAL_MOL_IN_EV}
    if more is not None:
        out |= {"tracked_each_eV": each, "pulls": len(each)}
    se = error_standard_error(each, reference.get("values_eV"))
    if se is not None:
        out["error_se_kcal_mol"] = se / KCAL_MOL_IN_EV
    return out
