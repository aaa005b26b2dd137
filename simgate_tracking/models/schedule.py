"""The learning-rate schedule the package's world models train with: one cycle over the fit."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch


def one_cycle(module: L.LightningModule, optimizer: torch.optim.Optimizer, max_lr: float) -> Any:
    """``optimizer`` on a one-cycle schedule (warm-up, then annealing) over the fit, for ``configure_optimizers``.

    A fit of unknown length, or a module not attached to a Trainer (a plain PyTorch loop sets its own schedule),
    gets the optimizer alone.
    """
    try:
        total = float(module.trainer.estimated_stepping_batches)
    except RuntimeError:  # not attached to a Trainer
        total = math.inf
    if not math.isfinite(total):  # an open-ended fit has no cycle to fit the schedule to
        return optimizer
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=int(total) + 1, pct_start=0.15)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
