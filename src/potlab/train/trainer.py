"""Trainer: one loop for every architecture.

Adam/AdamW, ReduceLROnPlateau or a cosine rate over the budget
(:mod:`potlab.train.schedule`), EMA, gradient clipping, early stopping, a wall-clock
budget, the best-validation model (EMA weights) as ``model.pt``, an atomic checkpoint
after every epoch, and resume from it with the same numbers as an uninterrupted run (the
batch order of epoch k depends only on (seed, k)).

The model trains on ``training.device`` (batches are moved there; numbers come back with
``.cpu()``), in one process or in several (:mod:`potlab.train.distributed`: each rank a
disjoint shard of every global batch, gradients summed; rank 0 validates, decides and
writes).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from potlab import data as pdata
from potlab.analysis.parity import parity_metrics
from potlab.errors import InputError
from potlab.potential import Potential
from potlab.progress import progress
from potlab.train.budget import Budget
from potlab.train.checkpoint import (
    check_resume_config,
    load_training_checkpoint,
    prepare_run_directory,
    save_atomic,
    write_text_atomic,
)
from potlab.train.config import ConfigError, TrainConfig
from potlab.train.distributed import (
    Ranks,
    all_reduce_gradients,
    all_reduce_sum,
    broadcast_object,
    process_group,
)
from potlab.train.ema import EMA
from potlab.train.loss import loss_normalisers, weighted_loss
from potlab.train.metrics_log import append_metrics, truncate_metrics
from potlab.train.prepared import Prepared
from potlab.train.schedule import LearningRate
from potlab.train.starting import continue_from, refit_e0, take_output_statistics
from potlab.train.training_data import DTYPES as _DTYPES
from potlab.train.training_data import build as build_training_data

log = logging.getLogger("potlab.train")


class TrainingDiverged(ConfigError):
    """The training loss became NaN or inf (too high a learning rate, or bad labels)."""


@dataclass
class TrainResult:
    out: Path
    epochs: int
    best_epoch: int
    best_valid_loss: float
    stop_reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Train the potential a :class:`TrainConfig` describes into ``cfg.out``."""

    def __init__(self, cfg: TrainConfig, out: str | Path | None = None):
        self.cfg = cfg
        self.out = Path(out or cfg.out)
        self.ckpt_path = self.out / "checkpoints" / "last.pt"
        self.ranks = Ranks()
        self.device = torch.device("cpu")

    # ---- set-up -----------------------------------------------------------------
    def _check_resume_config(self) -> None:
        check_resume_config(self.out, self.cfg)

    def _setup_data(self, split: pdata.Split | None = None) -> None:
        """Read, split and prepare the data (:func:`potlab.train.training_data.build`).
        Rank 0 (or the one process) decides the split and writes ``split.json``,
        ``e0.json`` and ``outliers.json``; the other ranks get rank 0's ``split``."""
        td = build_training_data(self.cfg, self.out, write=self.ranks.main, split=split)
        self.report, self.split, self.e0fit, self.elements = td.report, td.split, td.e0fit, td.elements
        self.sampling, self.train_data, self.valid_data = td.sampling, td.train_data, td.valid_data
        self.shift, self.scale, self.avg_num_neighbors = td.shift, td.scale, td.avg_num_neighbors

    def _setup_model(self) -> None:
        t = self.cfg.training
        torch.manual_seed(t.seed)
        self.potential = Potential(
            self.cfg.model.name, self.cfg.model.params(), self.elements, e0=self.e0fit.energies,
            shift=self.shift, scale=self.scale, avg_num_neighbors=self.avg_num_neighbors,
        ).to(device=self.device, dtype=_DTYPES[t.dtype])
        if t.init_model:  # continue from a potlab model: it becomes the potential
            self.potential = continue_from(t.init_model, self.potential, self.device,
                                           _DTYPES[t.dtype])
            self.avg_num_neighbors = self.potential.avg_num_neighbors
        if t.init_model or getattr(self.potential.model, "initial_output", None) is not None:
            # the starting model's E0, shift and scale (init_model, or a mace-torch init_from)
            self.e0fit, self.shift, self.scale = take_output_statistics(self.potential)
            if self.ranks.main:
                write_text_atomic(json.dumps(self.e0fit.to_dict(), indent=1), self.out / "e0.json")
        params = self.potential.parameters()
        if t.optimizer == "adamw":
            self.opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        else:
            self.opt = torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
        self.sched = LearningRate(self.opt, t.scheduler, t.lr, t.min_lr,
                                  t.scheduler_patience, t.scheduler_factor,
                                  t.scheduler_warmup_steps)
        self.ema = EMA(self.potential, t.ema_decay) if t.ema_decay else None

    # ---- evaluation ---------------------------------------------------------------
    def _loss_kwargs(self) -> dict[str, Any]:
        t = self.cfg.training
        return {"energy_weight": t.energy_weight, "forces_weight": t.forces_weight,
                "stress_weight": t.stress_weight, "energy_loss": t.energy_loss}

    def evaluate(self, data: Prepared) -> dict[str, float]:
        """Loss and parity metrics on prepared data (anything with ``len`` and
        ``batch(idx)``) with the current weights."""
        t = self.cfg.training
        use_stress = t.stress_weight > 0
        self.potential.eval()
        total, count = 0.0, 0
        pred: dict[str, list[np.ndarray]] = {"e": [], "f": [], "e_ref": [], "f_ref": [], "n": []}
        for k in range(0, len(data), t.valid_batch_size):
            idx = list(range(k, min(k + t.valid_batch_size, len(data))))
            g, ref = self._on_device(*data.batch(idx))
            out = self.potential(g, forces=True, stress=use_stress)
            loss, _ = weighted_loss({k2: v.detach() for k2, v in out.items()}, ref, **self._loss_kwargs())
            total += float(loss) * len(idx)
            count += len(idx)
            for key, v in (("e", out["energy"]), ("f", out["forces"]), ("e_ref", ref["energy"]),
                           ("f_ref", ref["forces"]), ("n", ref["n_atoms"])):
                pred[key].append(v.detach().double().cpu().numpy())
        m = parity_metrics(*(np.concatenate(pred[key]) for key in ("e", "e_ref", "n", "f", "f_ref")))
        m["loss"] = total / max(count, 1)
        return m

    def _on_device(self, g, ref: dict[str, torch.Tensor]):
        """A batch (graph, labels) on the training device."""
        return g.to(device=self.device), {k: v.to(self.device) for k, v in ref.items()}

    def _train_step(self, idx: list[int], batch=None) -> torch.Tensor:
        """Gradients of the loss of the global batch ``idx`` (frame indices), this rank
        computing its shard (``batch``: the shard already batched, e.g. by DataLoader
        workers). Returns the batch's loss (a 0-d tensor, the same on every rank); the
        optimiser has not stepped yet."""
        t = self.cfg.training
        shard = self.ranks.shard(idx)
        ref = None
        if shard:
            g, ref = self._on_device(*(batch if batch is not None else self.train_data.batch(shard)))
            norms = loss_normalisers(ref)
        else:  # a global batch smaller than the number of ranks
            norms = torch.zeros(3, dtype=_DTYPES[t.dtype], device=self.device)
        norms = all_reduce_sum(norms, self.ranks)  # the global batch's denominators
        self.opt.zero_grad(set_to_none=True)
        if shard:
            out = self.potential(g, forces=True, stress=t.stress_weight > 0, training=True)
            loss, _ = weighted_loss(out, ref, normalisers=norms, **self._loss_kwargs())
            loss.backward()
            loss = loss.detach().double()
        else:
            loss = torch.zeros((), dtype=torch.float64, device=self.device)
        all_reduce_gradients(list(self.potential.parameters()), self.ranks)
        return all_reduce_sum(loss, self.ranks)

    def _eval_valid(self) -> dict[str, float]:
        data = self.valid_data if self.valid_data is not None else self.train_data
        if self.ema is not None:
            with self.ema.applied():
                return self.evaluate(data)
        return self.evaluate(data)

    def _save_best(self, epoch: int, metrics: dict[str, float]) -> None:
        meta = {"epoch": epoch, "valid": metrics, "config": self.cfg.model_dump(mode="json"),
                "e0_fit": self.e0fit.to_dict()}
        if self.ema is not None:
            with self.ema.applied():
                self.potential.save(self.out / "model.pt", metadata=meta)
        else:
            self.potential.save(self.out / "model.pt", metadata=meta)

    # ---- the loop ------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train (or resume) in this process, or as one rank of several (the process group
        torchrun or :func:`potlab.train.distributed.launch` set up)."""
        with process_group(self.cfg.training.device) as (self.ranks, self.device):
            return self._run()

    def _setup_rank0_first(self) -> None:
        """Rank 0 checks the run directory, writes the config and decides the split; the
        other ranks then read the same data with rank 0's split. Bad input on rank 0 stops
        every rank with its message."""
        cfg = self.cfg
        error, split = None, None
        if self.ranks.main:
            try:
                prepare_run_directory(self.out)
                self._check_resume_config()
                write_text_atomic(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
                                  self.out / "config.yaml")
                self._setup_data()
                split = self.split
            except (InputError, OSError) as err:  # the other ranks stop with it
                if not self.ranks.distributed:
                    raise
                error = err
        error_text, split = broadcast_object((None if error is None else str(error), split), self.ranks)
        if error is not None:
            raise error
        if error_text is not None:
            raise InputError(f"(rank 0) {error_text}")
        if not self.ranks.main:
            self._setup_data(split)

    def _resume_or_share_initial_state(self) -> dict[str, Any]:
        """The loop state; weights, optimiser, scheduler and EMA from the checkpoint when
        there is one (read by rank 0, sent to all), else rank 0's initial weights for all."""
        state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best_loss": float("inf"),
                 "best_epoch": -1, "bad_epochs": 0, "stop_reason": None}
        metrics_path = self.out / "metrics.csv"
        ck = None
        if self.ranks.main:
            if self.ckpt_path.exists():
                ck = load_training_checkpoint(self.ckpt_path)
            elif metrics_path.exists():
                metrics_path.unlink()
        if self.ranks.distributed:
            fresh = None if ck is not None or not self.ranks.main else {
                k: v.detach().cpu() for k, v in self.potential.state_dict().items()}
            ck, fresh = broadcast_object((ck, fresh), self.ranks)
            if ck is None:
                self.potential.load_state_dict(fresh)
                if self.ema is not None:
                    self.ema = EMA(self.potential, self.cfg.training.ema_decay)
        if ck is not None:
            self.potential.load_state_dict(ck["potential"]["state_dict"])
            self.opt.load_state_dict(ck["optimizer"])
            self.sched.load_state_dict(ck["scheduler"])
            if self.ema is not None and ck.get("ema"):
                self.ema.load_state_dict(ck["ema"])
            state.update(ck["state"])
            if state["stop_reason"] in ("max_time", "max_epochs"):
                state["stop_reason"] = None  # a larger budget in the config continues the run
            log.info("resuming %s at epoch %d", self.out, state["epoch"])
            if self.ranks.main:
                truncate_metrics(metrics_path, state["epoch"])
        return state

    def _run(self) -> TrainResult:
        cfg, t = self.cfg, self.cfg.training
        main = self.ranks.main
        if t.threads:
            torch.set_num_threads(t.threads)
        self._setup_rank0_first()
        self._setup_model()
        state = self._resume_or_share_initial_state()
        metrics_path = self.out / "metrics.csv"

        n_train = len(self.train_data)
        bs = t.batch_size
        budget = Budget(t.budget_clock, t.max_time, t.max_epochs * max(1, -(-n_train // bs)),
                        state["elapsed"], self.ranks, self.device)
        elapsed, out_of_time = budget.elapsed, budget.out_of_time

        if state["stop_reason"] is None and t.max_time is not None and out_of_time():
            state["stop_reason"] = "max_time"
        bar = progress(total=t.max_epochs, initial=state["epoch"], desc=f"train {cfg.model.name}",
                       unit="epoch", **({} if main else {"disable": True}))
        while state["stop_reason"] is None and state["epoch"] < t.max_epochs:
            epoch = state["epoch"]
            self.potential.train()
            rng = np.random.default_rng([t.seed, epoch])  # batch order depends on (seed, epoch) only
            if self.sampling is None:
                order = rng.permutation(n_train)
            else:  # draw frames so that each subset gets its configured share of steps
                order = rng.choice(n_train, size=n_train, replace=True, p=self.sampling)
            train_loss, seen = 0.0, 0
            batches = [order[k : k + bs].tolist() for k in range(0, n_train, bs)]  # global
            shards = [self.ranks.shard(b) for b in batches]  # this rank's part of each
            stream = pdata.iter_batches(self.train_data, [s for s in shards if s], t.num_workers)
            for idx, shard in zip(batches, shards):
                if t.max_time is not None and out_of_time():
                    state["stop_reason"] = "max_time"
                    break
                if t.scheduler == "cosine":
                    self.sched.before_step(budget.share_spent(state["step"]), state["step"])
                loss = self._train_step(idx, next(stream) if shard else None)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"{self.out}: training diverged: the loss is {float(loss)} at epoch "
                        f"{epoch}, step {state['step']} (lr {self.opt.param_groups[0]['lr']:g}); "
                        f"lower training.lr or set training.clip_grad. Epochs finished before "
                        f"stay in {self.ckpt_path.parent} and model.pt")
                if t.clip_grad:
                    torch.nn.utils.clip_grad_norm_(self.potential.parameters(), t.clip_grad)
                self.opt.step()
                if self.ema is not None:
                    self.ema.update()
                train_loss += float(loss) * len(idx)
                seen += len(idx)
                state["step"] += 1
            stream.close()  # stops the DataLoader workers after a budget break
            if seen == 0:
                break
            vm = broadcast_object(self._eval_valid() if main else None, self.ranks)
            self.sched.after_epoch(vm["loss"])
            improved = vm["loss"] < state["best_loss"]
            if improved:
                state["best_loss"], state["best_epoch"], state["bad_epochs"] = vm["loss"], epoch, 0
                if main:
                    self._save_best(epoch, vm)
            else:
                state["bad_epochs"] += 1
            if t.early_stopping_patience and state["bad_epochs"] >= t.early_stopping_patience:
                state["stop_reason"] = "early_stopping"
            state["epoch"] = epoch + 1
            if state["stop_reason"] is None and state["epoch"] >= t.max_epochs:
                state["stop_reason"] = "max_epochs"
            state["elapsed"] = elapsed()
            if main:
                row = {
                    "epoch": epoch, "step": state["step"], "time_s": round(state["elapsed"], 2),
                    "lr": self.opt.param_groups[0]["lr"], "train_loss": train_loss / seen,
                    "valid_loss": vm["loss"],
                    "valid_energy_mae_mev_per_atom": vm["energy_mae_mev_per_atom"],
                    "valid_forces_mae_mev_per_a": vm.get("forces_mae_mev_per_a", float("nan")),
                    "best": int(improved),
                }
                self._checkpoint(state)
                append_metrics(metrics_path, row)
                bar.update(1)
                bar.set_postfix(loss=f"{vm['loss']:.3g}",
                                F_mae=f"{row['valid_forces_mae_mev_per_a']:.1f}meV/A")
        bar.close()
        if state["stop_reason"] is None:
            state["stop_reason"] = "max_epochs"
        state["elapsed"] = elapsed()
        summary = {
            "epochs": state["epoch"], "steps": state["step"], "best_epoch": state["best_epoch"],
            "best_valid_loss": state["best_loss"], "stop_reason": state["stop_reason"],
            "elapsed_s": state["elapsed"], "n_train": n_train,
            "n_valid": None,  # rank 0 validates
            "e0_method": self.e0fit.method, "shift": self.shift, "scale": self.scale,
            "avg_num_neighbors": self.avg_num_neighbors, "e0_refit": None,
            "device": str(self.device), "processes": self.ranks.world,
        }
        if main:
            self._checkpoint(state)
            if not (self.out / "model.pt").exists():  # budget ran out before one epoch finished
                self._save_best(state["epoch"], self._eval_valid())
            summary["e0_refit"] = (refit_e0(self.out / "model.pt", self.train_data,
                                            t.valid_batch_size, self.device)
                                   if t.refit_e0 else None)
            summary["n_valid"] = 0 if self.valid_data is None else len(self.valid_data)
            write_text_atomic(json.dumps(summary, indent=1), self.out / "summary.json")
        return TrainResult(self.out, state["epoch"], state["best_epoch"], state["best_loss"],
                           state["stop_reason"], summary)

    def _checkpoint(self, state: dict[str, Any]) -> None:
        save_atomic(
            {
                "potential": {"spec": self.potential.spec(),
                              "state_dict": {k: v.detach().cpu() for k, v in
                                             self.potential.state_dict().items()}},
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "state": dict(state),
            },
            self.ckpt_path,
        )


def train(cfg: TrainConfig, out: str | Path | None = None) -> TrainResult:
    """Train (or resume) the run ``cfg`` describes (one potential; a config with a
    ``committee`` section goes to :func:`potlab.train.train_committee`)."""
    if cfg.committee is not None:
        raise ConfigError("this config has a 'committee' section: use potlab.train.train_committee")
    return Trainer(cfg, out).run()
