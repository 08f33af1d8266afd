"""Exponential moving average of parameters (evaluated and saved as the best model)."""

from __future__ import annotations

import contextlib

import torch


class EMA:
    """shadow <- decay * shadow + (1 - decay) * param after each optimiser step."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module = module
        self.decay = float(decay)
        self.shadow = [p.detach().clone() for p in module.parameters()]

    @torch.no_grad()
    def update(self) -> None:
        for s, p in zip(self.shadow, self.module.parameters()):
            s.mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)

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
        return {"decay": self.decay, "shadow": [s.clone() for s in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        for s, v in zip(self.shadow, state["shadow"]):
            s.copy_(v)
