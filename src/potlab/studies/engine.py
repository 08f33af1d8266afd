"""Run a study: its jobs through :mod:`potlab.executor` (local processes, or a Dask cluster),
each submitted as soon as the jobs it reads have finished, skipping what is done and
current, resuming what was interrupted, recording failures and carrying on.

A failed job blocks only the jobs that read its outputs; the report is written from whatever
finished. A model whose MD explodes is a result (its MD job records the instability), not a
failure; a crashed training is a failure.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potlab.executor import JobPool, default_workers
from potlab.progress import progress
from potlab.studies import records
from potlab.studies.config import Study, parse_study
from potlab.studies.plan import Job, build_plan

log = logging.getLogger(__name__)
STUDY_FILE = "study.json"


@dataclass
class RunSummary:
    out: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    report: Path | None = None


def _threads(study: Study, workers: int) -> int:
    if study.execution.threads_per_job:
        return study.execution.threads_per_job
    return max(1, default_workers() // max(workers, 1))


def task_for(job: Job, out: Path, threads: int) -> dict[str, Any]:
    return {"key": job.key, "kind": job.kind, "hash": job.hash, "dir": str(out / job.key),
            "root": str(out), "payload": job.payload, "threads": threads}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one job in this process and write its record (also on failure). Module-level and
    plain-data in and out, so it runs in local workers and on Dask workers alike."""
    import torch

    from potlab.studies import jobs as job_functions

    job_dir = Path(task["dir"])
    t0 = records.begin(job_dir, task["hash"])
    fn = getattr(job_functions, f"{task['kind']}_task")
    threads = torch.get_num_threads()
    try:
        job_functions.set_threads(task.get("threads"))
        summary = fn(task["payload"], job_dir, Path(task["root"]))
    except Exception as err:  # noqa: BLE001 - a failed job is recorded; the study goes on
        (job_dir / "error.txt").write_text(traceback.format_exc())
        msg = " ".join(f"{type(err).__name__}: {err}".split())[:500]
        return records.finish(job_dir, task["hash"], "failed", t0, error=msg)
    finally:
        torch.set_num_threads(threads)  # a job run in the caller's process leaves it as it was
    return records.finish(job_dir, task["hash"], "done", t0, summary=summary)


def save_study(study: Study, out: Path, source: str) -> None:
    records.write_json({"source": source, "preset": study.preset,
                        "study": study.model_dump(mode="json")}, out / STUDY_FILE)


def load_saved(out: Path) -> Study:
    """The study a directory was last run with (as resolved then: preset applied)."""
    raw = records.read_json(Path(out) / STUDY_FILE)
    if raw is None:
        from potlab.studies.config import StudyError

        raise StudyError(f"{out}: not a study directory (no {STUDY_FILE})")
    return parse_study(raw["study"], source=f"{out}/{STUDY_FILE}")


def run_study(study: Study, out: str | Path, *, scheduler: Any = None, workers: int | None = None,
              source: str = "<study>", stages: list[str] | None = None) -> RunSummary:
    """Run every job of ``study`` that is not done and current into ``out``.

    ``workers``: local processes (default: the study's ``execution.workers`` or the usable
    CPUs); with ``scheduler`` (a Dask address or ``distributed.Client``) the cluster runs them.
    ``stages`` limits the run to those stages (and what they need that is already done).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_study(study, out, source)
    jobs = build_plan(study, out)
    n_workers = workers or study.execution.workers or default_workers()
    threads = _threads(study, n_workers)
    summary = RunSummary(out)
    status: dict[str, str] = {}
    todo: list[Job] = []
    for job in jobs:
        if stages and job.stage not in stages:
            status[job.key] = "done" if records.is_current(out / job.key, job.hash) else "skip"
        elif records.is_current(out / job.key, job.hash):
            status[job.key] = "done"
            summary.skipped.append(job.key)
        else:
            todo.append(job)
    env = {"OMP_NUM_THREADS": str(threads), "POTLAB_QUIET": "1"}
    bar = progress(total=len(todo), desc="study", unit="job")
    with JobPool(scheduler=scheduler, workers=n_workers, worker_env=env,
                 start_method="spawn") as pool:
        while todo or len(pool):
            for job in list(todo):  # submit every job whose inputs are ready, in plan order
                deps = [status.get(d, "pending") for d in job.deps]
                if any(s in ("pending", "running") for s in deps):
                    continue
                todo.remove(job)
                bad = [d for d, s in zip(job.deps, deps, strict=True) if s != "done"]
                if bad and not job.soft:
                    status[job.key] = "blocked"
                    summary.blocked[job.key] = f"needs {bad[0]} ({status[bad[0]]})"
                    bar.update(1)
                    continue
                status[job.key] = "running"
                pool.submit(run_task, task_for(job, out, threads), tag=job)
            if not len(pool):
                break
            job, rec = pool.next_done()
            status[job.key] = rec["status"]
            summary.ran.append(job.key)
            bar.update(1)
            bar.set_postfix_str(job.key[-40:])
            if rec["status"] != "done":
                summary.failed[job.key] = rec.get("error") or "failed"
                log.warning("%s failed: %s", job.key, rec.get("error"))
            else:
                log.info("%s done in %.0f s", job.key, rec.get("elapsed_s", 0))
    bar.close()
    if status.get("report") == "done":
        summary.report = out / "report.html"
    return summary


def study_status(out: str | Path) -> list[tuple[str, str, str]]:
    """(job, state, detail) for every job of the study last run in ``out``."""
    out = Path(out)
    study = load_saved(out)
    jobs = build_plan(study, out)
    states: dict[str, str] = {}
    rows = []
    for job in jobs:
        state, detail = records.job_state(out / job.key, job.hash)
        if state == "pending" and not job.soft:
            bad = [d for d in job.deps if states.get(d) in ("failed", "blocked")]
            if bad:
                state, detail = "blocked", f"needs {bad[0]} ({states[bad[0]]})"
        states[job.key] = state
        rows.append((job.key, state, detail))
    return rows
