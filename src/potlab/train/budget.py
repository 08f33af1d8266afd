"""A training run's budget: seconds on the configured clock (summed over resumes), and
the share of it spent, which the cosine rate follows. Under several processes rank 0's
clock decides for every rank."""

from __future__ import annotations

import time

import torch

from potlab.train.distributed import Ranks, rank0_flag, rank0_value

#: "wall": elapsed time; "cpu": this process's CPU time (tests put fake clocks here)
CLOCKS = {"wall": time.monotonic, "cpu": time.process_time}


class Budget:
    def __init__(self, clock: str, max_time: float | None, steps_budget: int, elapsed0: float,
                 ranks: Ranks, device: torch.device) -> None:
        self.clock, self.max_time, self.steps_budget = CLOCKS[clock], max_time, steps_budget
        self.ranks, self.device = ranks, device
        self.elapsed0, self.t0 = elapsed0, self.clock()

    def elapsed(self) -> float:
        """Seconds on the budget clock, this run and the runs it resumes."""
        return self.elapsed0 + self.clock() - self.t0

    def out_of_time(self) -> bool:
        return rank0_flag(self.max_time is not None and self.elapsed() >= self.max_time,
                          self.ranks, self.device)

    def share_spent(self, step: int) -> float:
        """The larger of the steps taken over the steps budget and, with max_time, the
        seconds spent over max_time."""
        share = step / self.steps_budget
        if self.max_time is not None:
            share = max(share, rank0_value(self.elapsed(), self.ranks, self.device) / self.max_time)
        return share
