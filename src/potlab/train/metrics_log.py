"""The training log: one CSV row per epoch, appended; rows a killed run wrote after its
last checkpoint are dropped on resume."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

METRIC_FIELDS = [
    "epoch", "step", "time_s", "lr", "train_loss", "valid_loss",
    "valid_energy_mae_mev_per_atom", "valid_forces_mae_mev_per_a", "best",
]


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)
        fh.flush()


def truncate_metrics(path: Path, next_epoch: int) -> None:
    """Drop rows a killed run wrote after its last checkpoint (epoch >= next_epoch)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) < next_epoch]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
