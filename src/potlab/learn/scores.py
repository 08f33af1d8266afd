"""``iter_NNN/scores.csv``: the committee's uncertainty of every explorer frame, with what
selection needs beside it (step, collective variable, committee mean energy, broken and
fused flags, structure hash), written once by the score step and read back as a
:class:`potlab.learn.selectors.Pool` by the select step."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from potlab.atomic import atomic_open
from potlab.learn.selectors import Pool

COLUMNS = ("frame", "run", "step", "cv_A", "energy_mean_eV", "energy_std_eV",
           "max_forces_var_eV2_A2", "mean_forces_var_eV2_A2", "cv_force_std_eV_A", "broken",
           "fused", "hash")
#: the column of each ``score.measure``
MEASURE_COLUMN = {"energy_std": "energy_std_eV", "max_forces_var": "max_forces_var_eV2_A2",
                  "mean_forces_var": "mean_forces_var_eV2_A2", "cv_force_std": "cv_force_std_eV_A"}


def score_rows(exp, scores, broken: np.ndarray, fused: np.ndarray,
               hashes: list[str]) -> list[dict[str, Any]]:
    """One row per frame of the exploration ``exp`` with its committee ``scores``."""
    n = len(exp.frames)
    cv = exp.cv if exp.cv is not None else np.full(n, np.nan)
    run = exp.run_index if exp.run_index is not None else np.zeros(n, dtype=int)
    return [{"frame": k, "run": int(run[k]), "step": int(exp.steps[k]), "cv_A": float(cv[k]),
             "energy_mean_eV": float(scores.energy_mean[k]),
             "energy_std_eV": float(scores.energy_std[k]),
             "max_forces_var_eV2_A2": float(scores.max_forces_var[k]),
             "mean_forces_var_eV2_A2": float(scores.mean_forces_var[k]),
             "cv_force_std_eV_A": float(scores.cv_force_std[k]),
             "broken": int(broken[k]), "fused": int(fused[k]), "hash": hashes[k]}
            for k in range(n)]


def write_scores(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_open(path, "w") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(rows)


def read_pool(path: Path, measure: str) -> Pool:
    """The scored frames at ``path`` as the selectors' pool, uncertain by ``measure``."""
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    cv = np.array([float(r["cv_A"]) for r in rows])
    return Pool(uncertainty=np.array([float(r[MEASURE_COLUMN[measure]]) for r in rows]),
                step=np.array([int(r["step"]) for r in rows]),
                cv=None if np.isnan(cv).all() else cv,
                energy=np.array([float(r["energy_mean_eV"]) for r in rows]),
                broken=np.array([bool(int(r["broken"])) for r in rows]),
                fused=np.array([bool(int(r.get("fused") or 0)) for r in rows]),
                hashes=[r["hash"] for r in rows],
                run=np.array([int(r["run"]) for r in rows]))
