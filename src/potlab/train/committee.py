"""Train a committee: N members of one architecture with different seeds and splits.

``potlab train`` with ``committee: 5`` in the config trains ``out/member_0`` ...
``out/member_4`` (each an ordinary, resumable training run with seed ``seed + m``),
scores each member by its force MAE on its whole data set (training + validation
frames), and writes the members together as ``out/committee.pt`` (load it with
``potlab.load``) and ``out/committee.json`` (members, splits, scores, a fingerprint of
the data). Split strategies follow seed 002: ``fresh`` random splits per member,
``same`` split for all, or ``inherited`` from the best member of an earlier committee,
with only the frames added since then spread at random.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from potlab import data as pdata
from potlab.data.split import fingerprint
from potlab.executor import run_jobs
from potlab.train.checkpoint import write_text_atomic
from potlab.train.config import ConfigError, TrainConfig
from potlab.train.prepared import read_training_frames

log = logging.getLogger(__name__)


@dataclass
class CommitteeResult:
    out: Path
    path: Path  # committee.pt
    members: list[dict[str, Any]] = field(default_factory=list)
    best_member: int = 0


def member_config(cfg: TrainConfig, m: int, out: Path) -> TrainConfig:
    member = cfg.model_copy(deep=True)
    member.committee = None
    member.training.seed = cfg.training.seed + m
    member.out = str(out / f"member_{m}")
    if cfg.committee.init_from:
        member.training.init_model = str(Path(cfg.committee.init_from) / f"member_{m}" / "model.pt")
    return member


def inherited_splits(frames, cfg: TrainConfig, source: Path) -> list[pdata.Split]:
    """Each member gets the best earlier member's split for the frames it knew; frames
    added since then are spread at random (seed per member) with ``valid_fraction``."""
    info_path = source / "committee.json"
    if not info_path.exists():
        raise ConfigError(f"committee.inherit_from: {info_path} not found (train that committee first)")
    info = json.loads(info_path.read_text())
    n_old = int(info["n_frames"])
    if n_old > len(frames) or fingerprint(frames, n_old) != info["fingerprint"]:
        raise ConfigError(
            f"committee.inherit_from: {source}: its {n_old} frames are not the first frames of "
            f"data.train (append new frames after the old ones)"
        )
    best = info["members"][info["best_member"]]
    old = pdata.Split.load(source / f"member_{best['member']}" / "split.json")
    new = np.arange(n_old, len(frames))
    splits = []
    for m in range(cfg.committee.size):
        rng = np.random.default_rng([cfg.training.seed + m, len(frames)])
        perm = rng.permutation(new)
        n_valid = round(cfg.data.valid_fraction * len(perm))
        splits.append(pdata.Split(
            train=list(old.train) + sorted(perm[n_valid:].tolist()),
            valid=list(old.valid) + sorted(perm[:n_valid].tolist()),
            strategy=f"inherited:{source}:member_{best['member']}", seed=cfg.training.seed + m,
        ))
    return splits


def _train_member(job: tuple[dict, str]) -> str:
    """One member's training (a module-level function, so it can run in a worker)."""
    from potlab.train.config import parse_config
    from potlab.train.trainer import train

    raw, source = job
    res = train(parse_config(raw, source=source))
    return str(res.out)


def train_committee(cfg: TrainConfig) -> CommitteeResult:
    """Train (or resume) every member, score them, write ``committee.pt``/``.json``."""
    import potlab
    from potlab.analysis.parity import evaluate
    from potlab.potential import Committee

    c = cfg.committee
    from potlab.train.checkpoint import prepare_run_directory
    from potlab.train.distributed import env_world_size

    if env_world_size() > 1:
        raise ConfigError("a committee under torchrun: train its members side by side with "
                          "committee.workers, or each member as its own run with several processes")

    out = Path(cfg.out)
    prepare_run_directory(out)
    if cfg.data.valid and c.split != "fresh":
        log.info("data.valid is given: every member validates on it; committee.split is moot")
    # splits index the frames as read; each member leaves the outliers it drops out of them
    frames, _ = read_training_frames(cfg.data)
    members = [member_config(cfg, m, out) for m in range(c.size)]
    splits: list[pdata.Split | None] = [None] * c.size
    if c.split == "inherited" and c.inherit_from:
        splits = inherited_splits(frames, cfg, Path(c.inherit_from))
    elif c.split == "same" and cfg.data.split == "random" and not cfg.data.valid:
        first = pdata.random_split(len(frames), valid_fraction=cfg.data.valid_fraction, seed=cfg.training.seed)
        splits = [first] * c.size
    for member, split in zip(members, splits):
        path = Path(member.out) / "split.json"
        if split is not None and not path.exists():  # a resumed member keeps its split
            split.describing(frames).save(path)
    if c.workers > 1:
        for member in members:
            member.training.threads = 1
    jobs = [(m.model_dump(mode="json"), f"committee member {k}") for k, m in enumerate(members)]
    run_jobs(_train_member, jobs, workers=c.workers, desc="committee")

    rows, pots = [], []
    for k, member in enumerate(members):
        run = Path(member.out)
        pot = potlab.load(run / "model.pt", device=cfg.training.device)
        split = pdata.check_split(pdata.Split.load(run / "split.json"), frames, run / "split.json")
        seen = [frames[i] for i in split.train + split.valid]  # dropped outliers left out
        metrics, _ = evaluate(pot, seen)
        summary = json.loads((run / "summary.json").read_text())
        rows.append({"member": k, "seed": member.training.seed, "dir": str(run),
                     "n_train": len(split.train), "n_valid": len(split.valid),
                     # the training's own account: its epochs (a warm start counts from 0),
                     # why it stopped, seconds on its budget clock
                     "epochs": summary["epochs"], "stop_reason": summary["stop_reason"],
                     "train_s": summary["elapsed_s"],
                     "forces_mae_all": metrics["overall"].get("forces_mae_mev_per_a"),
                     "energy_mae_all": metrics["overall"]["energy_mae_mev_per_atom"]})
        pots.append(pot)
    scores = [r["forces_mae_all"] if r["forces_mae_all"] is not None else r["energy_mae_all"] for r in rows]
    best = int(np.argmin(scores))
    com = Committee(pots)
    path = com.save(out / "committee.pt", metadata={"members": rows, "split": c.split})
    info = {"size": c.size, "split": c.split, "inherit_from": c.inherit_from, "n_frames": len(frames),
            "fingerprint": fingerprint(frames), "best_member": best, "members": rows,
            "groupable": com.grouped_model is not None}
    write_text_atomic(json.dumps(info, indent=1), out / "committee.json")
    return CommitteeResult(out=out, path=path, members=rows, best_member=best)
