"""Exponential moving average of parameters (evaluated and saved as the best model)."""

from __future__ import annotations

import contextlib

import torch


class EMA:
    """shadow <- d * shadow + (1 - d) * param after each optimiser step, with
    d = min(decay, (1 + n) / (10 + n)) after n updates, so that early averages are not
    dominated by the random initial weights."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module = module
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = [p.detach().clone() for p in module.parameters()]

    @torch.no_grad()
    def update(self) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for s, p in zip(self.shadow, self.module.parameters()):
            s.mul_(d).add_(p.detach(), alpha=1.0 - d)

    @contextlib.contextmanager
    def applied(self):
        """Temporarily load the averaged weights into the module."""
        backup = [p.detach().clone() for p in self.module.parameters()]
        with torch.no_grad():
            for s, p in zip(self.shadow, self.module.parameters()):
                p.copy_(s)
        try:
            yield self.module
        finally:
            with torch.no_grad():
                for b, p in zip(backup, self.module.parameters()):
                    p.copy_(b)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": [s.clone() for s in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.num_updates = int(state.get("num_updates", 0))
        for s, v in zip(self.shadow, state["shadow"]):
            s.copy_(v)
