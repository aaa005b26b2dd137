"""The gate's share of the demo's training wall time, at the callback's default interval (every validation run)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

DEMO_EPOCHS = 3


@dataclass(frozen=True)
class GateShare:
    """Seconds inside the gate's hook against the whole training run that contains it."""

    gate_seconds: float
    training_seconds: float
    checks: int

    @property
    def fraction(self) -> float:
        """The gate's share of training wall time."""
        return self.gate_seconds / self.training_seconds

    @property
    def detail(self) -> str:
        """What was timed, in a few words."""
        return f"{self.checks} checks, {self.gate_seconds:.1f} s of {self.training_seconds:.1f} s"


def _timed_hook(callback: Any, spent: list[float]) -> None:
    """Time the callback's validation-end hook, where every check runs, on this instance only."""
    hook = callback.on_validation_epoch_end

    def timed(trainer: Any, pl_module: Any) -> None:
        start = time.perf_counter()
        hook(trainer, pl_module)
        spent.append(time.perf_counter() - start)

    callback.on_validation_epoch_end = timed


def gate_share(epochs: int = DEMO_EPOCHS, seed: int = 0) -> GateShare:
    """Train the demo's world model on the toy world with the gate on, and time the gate inside the run.

    The share is measured inside the run (time in the gate's hook over the run's wall time), not as the difference
    of two runs, so that other load on a shared machine does not swing it.
    """
    import lightning as L  # noqa: N812

    from simgate_tracking.callbacks import SimulatorGateCallback
    from simgate_tracking.toy import make_probe_set
    from simgate_tracking.toy.data import ToyWorldDataModule
    from simgate_tracking.toy.model import ToyWorldModel
    from simgate_tracking.toy.task import reached_goal

    L.seed_everything(seed, verbose=False)
    probe = make_probe_set(seed=seed)
    data = ToyWorldDataModule(seed=seed)
    model = ToyWorldModel(frame_shape=probe.frame_shape, action_dim=probe.action_dim)
    callback = SimulatorGateCallback(probe, task_fn=reached_goal)
    spent: list[float] = []
    _timed_hook(callback, spent)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu" if not torch.cuda.is_available() else "auto",
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir="runs/benchmarks",
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    elapsed = time.perf_counter() - start
    return GateShare(gate_seconds=sum(spent), training_seconds=elapsed, checks=len(callback.history))
