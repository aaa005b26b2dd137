"""Stop training when the simulator gate keeps failing."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info

from simgate_tracking.callbacks.gate import SimulatorGateCallback
from simgate_tracking.gate import GateResult


class GateEarlyStopping(Callback):
    """Stop training after ``patience`` failing gate checks in a row.

    It reads the verdicts of the Trainer's :class:`SimulatorGateCallback` at the end of validation (only new checks
    count: a validation run that skipped the gate changes nothing). The first ``grace_checks`` checks never count, so
    an untrained model is not stopped at once. The stop decision is reduced across DDP ranks, so every rank stops
    together, and a rank-zero message names the weakest axis.

    For "stop when the weakest axis stops improving", use Lightning's own
    ``EarlyStopping(monitor="simgate/min_axis", mode="max")`` instead or beside it.

    Args:
        patience: Failing checks in a row that stop training.
        grace_checks: Leading checks that are ignored.
        verbose: Log a rank-zero message at every counted failure.

    Raises:
        ValueError: If ``patience`` < 1 or ``grace_checks`` < 0.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> stopper, gate = GateEarlyStopping(patience=2), SimulatorGate()
        >>> [stopper.decide(gate.evaluate({"controllability": score})) for score in (0.5, 0.9, 0.5, 0.4)]
        [False, False, False, True]
        >>> stopper.reason
        'simulator gate failed 2 checks in a row; weakest axis controllability = 0.400 (threshold 0.65)'
    """

    def __init__(self, patience: int = 3, grace_checks: int = 0, verbose: bool = True) -> None:
        for name, value, low in (("patience", patience, 1), ("grace_checks", grace_checks, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
        self.patience = patience
        self.grace_checks = grace_checks
        self.verbose = verbose
        self.checks_seen = 0
        self.failures_in_a_row = 0
        self.stopped_at_step: int | None = None
        self.reason: str | None = None

    @property
    def state_key(self) -> str:
        """Checkpoint key; several instances with different settings can live in one checkpoint."""
        return self._generate_state_key(patience=self.patience, grace_checks=self.grace_checks)

    def decide(self, result: GateResult) -> bool:
        """Count one new gate verdict and say whether training should stop."""
        self.checks_seen += 1
        if self.checks_seen <= self.grace_checks:
            return False
        self.failures_in_a_row = 0 if result.passed else self.failures_in_a_row + 1
        if self.failures_in_a_row < self.patience:
            return False
        self.reason = (
            f"simulator gate failed {self.failures_in_a_row} checks in a row; weakest axis {result.weakest_axis} = "
            f"{result.min_axis:.3f} (threshold {result.thresholds[result.weakest_axis]:.2f})"
        )
        return True

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Judge the gate checks that ran since the last validation (in ``fit`` only, never in the sanity check)."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        gates = [cb for cb in trainer.callbacks if isinstance(cb, SimulatorGateCallback)]  # type: ignore[attr-defined]
        if not gates:
            raise RuntimeError("GateEarlyStopping needs a SimulatorGateCallback in the Trainer's callbacks")
        history = gates[0].history
        should_stop = False
        for result in history[self.checks_seen :]:
            should_stop = self.decide(result) or should_stop
            if self.verbose and not result.passed:
                counted = (
                    f"grace check {self.checks_seen}/{self.grace_checks}, not counted"
                    if self.checks_seen <= self.grace_checks
                    else f"{self.failures_in_a_row}/{self.patience} failing checks in a row"
                )
                rank_zero_info(
                    f"Simulator gate failed (weakest axis {result.weakest_axis} = {result.min_axis:.3f}); {counted}"
                )
        should_stop = trainer.strategy.reduce_boolean_decision(should_stop, all=False)
        if should_stop and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped_at_step = trainer.global_step
            rank_zero_info(f"GateEarlyStopping: stopping training at step {trainer.global_step}: {self.reason}")

    def state_dict(self) -> dict[str, Any]:
        """The callback's memory across checks, as a plain dict for checkpoints."""
        return {
            "checks_seen": self.checks_seen,
            "failures_in_a_row": self.failures_in_a_row,
            "stopped_at_step": self.stopped_at_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; keys an older checkpoint lacks keep their defaults."""
        self.checks_seen = int(state_dict.get("checks_seen", 0))
        self.failures_in_a_row = int(state_dict.get("failures_in_a_row", 0))
        self.stopped_at_step = state_dict.get("stopped_at_step")
