"""Job records: what a study has done, kept beside each job's outputs.

Every job directory holds ``job.json`` (written when the job starts: its inputs' hash, host
and pid) and, once it has ended, ``record.json`` (status ``done`` or ``failed``, the hash it
ran with, its summary or error, start and end times). Both are written atomically, so a kill
leaves either the old record or the new one. A job is *current* when its record says
``done`` with the hash the plan computes now; a directory whose ``job.json`` carries another
hash holds outputs of other inputs and is cleared before the job runs again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from potlab.atomic import write_text_atomic

RECORD = "record.json"
STARTED = "job.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json(obj: Any, path: Path) -> Path:
    return write_text_atomic(json.dumps(obj, indent=1, default=_default), path)


def _default(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_record(job_dir: Path) -> dict[str, Any] | None:
    return read_json(Path(job_dir) / RECORD)


def is_current(job_dir: Path, job_hash: str) -> bool:
    rec = read_record(job_dir)
    return bool(rec and rec.get("status") == "done" and rec.get("hash") == job_hash)


def begin(job_dir: Path, job_hash: str) -> float:
    """Prepare ``job_dir`` for a run with ``job_hash``: keep a partial run of the same inputs
    (it resumes), clear outputs of other inputs, drop an old record. Returns the start time."""
    job_dir = Path(job_dir)
    started = read_json(job_dir / STARTED)
    stale = started is None or started.get("hash") != job_hash
    if stale and job_dir.exists() and any(job_dir.iterdir()):
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / RECORD).unlink(missing_ok=True)
    t0 = time.time()
    write_json({"hash": job_hash, "host": socket.gethostname(), "pid": os.getpid(),
                "started": t0}, job_dir / STARTED)
    return t0


def finish(job_dir: Path, job_hash: str, status: str, t0: float, summary: Any = None,
           error: str | None = None) -> dict[str, Any]:
    rec = {"status": status, "hash": job_hash, "started": t0, "finished": time.time(),
           "elapsed_s": time.time() - t0, "summary": summary, "error": error}
    write_json(rec, Path(job_dir) / RECORD)
    return rec


def job_state(job_dir: Path, job_hash: str) -> tuple[str, str]:
    """(``done`` | ``failed`` | ``running`` | ``pending``, detail) of one job."""
    job_dir = Path(job_dir)
    rec = read_record(job_dir)
    if rec is not None and rec.get("hash") == job_hash:
        if rec["status"] == "done":
            return "done", f"{rec.get('elapsed_s', 0):.0f} s"
        return rec["status"], rec.get("error") or ""
    started = read_json(job_dir / STARTED)
    if started is not None and started.get("hash") == job_hash:
        if started.get("host") == socket.gethostname() and _alive(started.get("pid")):
            return "running", f"pid {started['pid']}"
        return "pending", "interrupted; resumes from its checkpoint"
    if rec is not None or started is not None:
        return "pending", "inputs changed since the last run"
    return "pending", ""


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True
