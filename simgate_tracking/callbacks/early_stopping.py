"""Stop training when the simulator gate keeps failing."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from simgate_tracking.callbacks._state import read_stopping_state, restart_reason
from simgate_tracking.callbacks.gate import SimulatorGateCallback
from simgate_tracking.gate import GateResult


class GateEarlyStopping(Callback):
    """Stop training after ``patience`` failing gate checks in a row.

    It reads the verdicts of the Trainer's :class:`SimulatorGateCallback` at the end of validation (only new checks
    count: a validation run that skipped the gate changes nothing). The first ``grace_checks`` checks never count, so
    an untrained model is not stopped at once. The stop decision is reduced across DDP ranks, so every rank stops
    together, and a rank-zero message names the weakest axis.

    With ``confident=True`` a check counts as failing only when the evidence says so: some axis's confidence interval
    lies at or below its threshold (:attr:`GateResult.verdict` is ``"fail"``). An inconclusive check, whose intervals
    hold a threshold, is not a failure and ends a run of failures, as a passing check does: a probe set too small to
    tell never stops training.

    For "stop when the weakest axis stops improving", use Lightning's own
    ``EarlyStopping(monitor="simgate/min_axis", mode="max")`` instead or beside it.

    Args:
        patience: Failing checks in a row that stop training.
        grace_checks: Leading checks that are ignored.
        verbose: Log a rank-zero message at every counted failure.
        confident: Count only failures whose interval lies below the threshold (see above); False: every check whose
            point scores fail (:attr:`GateResult.passed`).

    Raises:
        ValueError: If ``patience`` < 1, ``grace_checks`` < 0 or ``confident`` is not a bool.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> stopper, gate = GateEarlyStopping(patience=2), SimulatorGate()
        >>> [stopper.decide(gate.evaluate({"controllability": score})) for score in (0.5, 0.9, 0.5, 0.4)]
        [False, False, False, True]
        >>> stopper.reason
        'simulator gate failed 2 checks in a row; weakest axis controllability = 0.400 (threshold 0.65)'
    """

    def __init__(self, patience: int = 3, grace_checks: int = 0, verbose: bool = True, confident: bool = False) -> None:
        for name, value, low in (("patience", patience, 1), ("grace_checks", grace_checks, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
        if not isinstance(confident, bool):
            raise ValueError(f"Expected argument `confident` to be a bool but got {confident!r}")
        self.confident = confident
        self.patience = patience
        self.grace_checks = grace_checks
        self.verbose = verbose
        self.checks_seen = 0
        self.failures_in_a_row = 0
        self.stopped_at_step: int | None = None
        self.reason: str | None = None
        self.manifest_hash: str | None = None  # the probe set whose checks the counters count

    @property
    def state_key(self) -> str:
        """Checkpoint key; several instances with different settings can live in one checkpoint."""
        # `confident` joins the key only when set, so checkpoints of the default instance still load
        extra = {"confident": True} if self.confident else {}
        return self._generate_state_key(patience=self.patience, grace_checks=self.grace_checks, **extra)

    def decide(self, result: GateResult) -> bool:
        """Count one new gate verdict and say whether training should stop."""
        self.checks_seen += 1
        if self.checks_seen <= self.grace_checks:
            return False
        failed = self.counts_as_failure(result)
        self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
        if self.failures_in_a_row < self.patience:
            return False
        weakest = result.weakest_axis
        self.reason = (
            f"simulator gate failed {self.failures_in_a_row} checks in a row"
            f"{f' at {result.confidence_level:.0%} confidence' if self.confident else ''}; weakest axis {weakest} = "
            f"{result.score_text(weakest)} (threshold {result.thresholds[weakest]:.2f})"
        )
        return True

    def counts_as_failure(self, result: GateResult) -> bool:
        """Whether ``result`` is a failure this instance counts: a confident one with ``confident=True``."""
        return result.verdict == "fail" if self.confident else not result.passed

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Count afresh when a resumed fit scores another probe set, or the gate's history was not restored."""
        gate = next((cb for cb in trainer.callbacks if isinstance(cb, SimulatorGateCallback)), None)  # type: ignore[attr-defined]
        if gate is None:
            return
        probe_hash = gate.probe_set.manifest_hash
        reason = restart_reason(self.checks_seen, self.manifest_hash, probe_hash, len(gate.history))
        if reason is not None:
            rank_zero_warn(f"GateEarlyStopping starts counting afresh: {reason}")
            self.checks_seen, self.failures_in_a_row, self.stopped_at_step = len(gate.history), 0, None
        self.manifest_hash = probe_hash

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
                if self.checks_seen <= self.grace_checks:
                    counted = f"grace check {self.checks_seen}/{self.grace_checks}, not counted"
                elif not self.counts_as_failure(result):
                    counted = f"inconclusive ({result.verdict_word()}), not counted"
                else:
                    counted = f"{self.failures_in_a_row}/{self.patience} failing checks in a row"
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
            "manifest_hash": self.manifest_hash,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; keys an older checkpoint lacks keep their defaults.

        A bad field (wrong type, negative count, more failures in a row than checks) warns, naming it, and keeps its
        default.
        """
        state = read_stopping_state(state_dict)
        self.checks_seen, self.failures_in_a_row = state["checks_seen"], state["failures_in_a_row"]
        self.stopped_at_step, self.manifest_hash = state["stopped_at_step"], state["manifest_hash"]
