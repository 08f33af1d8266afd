"""The learning rate over a training run.

``plateau`` (the default): PyTorch's ReduceLROnPlateau on the validation loss, as NequIP
and MACE train. It lowers the rate only after ``scheduler_patience`` epochs without
improvement, so a run cut short by its budget while the loss still falls ends at the
starting rate.

``cosine``: the rate falls from ``lr`` to ``min_lr`` along half a cosine (Loshchilov and
Hutter's SGDR without restarts) over the share of the run's budget spent: the larger of
the optimizer steps taken over ``max_epochs`` worth of steps and, with ``max_time``, the
budget clock's seconds over ``max_time``. A run on a time budget therefore ends at
``min_lr`` whenever the budget runs out, and a model continued from another
(``init_model``, a learn loop's warm start) starts the half cosine again: a warm restart.
``scheduler_warmup_steps`` (cosine only): the rate first rises linearly from
``lr / warmup`` to ``lr`` over that many optimizer steps. Adam's first steps after a
restart move every weight by about the rate, whatever its gradient, so a continued model
without a warm-up is first thrown off its minimum (a learn loop's member at 1e-3 went from
a validation force MAE of 53 to 77 meV/A in its first epoch and took the rest of its
budget to climb back; docs/results/hexane-learn/README.md). The rate depends on the step
and the share alone, so a resumed run takes the same rates as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def cosine_lr(lr: float, min_lr: float, share: float, step: int = 0, warmup: int = 0) -> float:
    """The rate of optimizer step ``step`` (from 0) after ``share`` (0-1, clipped) of the
    budget: ``lr`` at 0, ``min_lr`` at 1; times ``(step + 1) / warmup`` in the first
    ``warmup`` steps."""
    share = min(max(share, 0.0), 1.0)
    rate = min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * share))
    return rate * (step + 1) / warmup if step < warmup else rate


class LearningRate:
    """Sets the optimizer's rate: :meth:`before_step` with the share of the budget spent,
    :meth:`after_epoch` with the validation loss; its state goes in the checkpoint."""

    def __init__(self, opt: torch.optim.Optimizer, kind: str, lr: float, min_lr: float,
                 patience: int, factor: float, warmup: int = 0) -> None:
        self.opt, self.kind, self.lr, self.min_lr, self.warmup = opt, kind, lr, min_lr, warmup
        self.plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=factor, patience=patience, min_lr=min_lr)
            if kind == "plateau" else None)

    def before_step(self, share: float, step: int) -> None:
        if self.kind == "cosine":
            rate = cosine_lr(self.lr, self.min_lr, share, step, self.warmup)
            for group in self.opt.param_groups:
                group["lr"] = rate

    def after_epoch(self, valid_loss: float) -> None:
        if self.plateau is not None:
            self.plateau.step(valid_loss)

    def state_dict(self) -> dict[str, Any]:
        return self.plateau.state_dict() if self.plateau is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.plateau is not None and state:
            self.plateau.load_state_dict(state)
