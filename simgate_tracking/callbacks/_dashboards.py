"""Where a judged gate check goes: the JSON report and the Trainer's dashboards, none of which may stop training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from simgate_tracking.loggers import GateLogger, gate_loggers_for, safe_finalize
from simgate_tracking.loggers.base import PartBackoff
from simgate_tracking.report import GateCheck


def write_report(check: GateCheck, directory: Path, prefix: str) -> None:
    """Write ``check`` as ``<directory>/<prefix>-<step>.json``; a failed write warns instead of raising."""
    try:
        check.write(directory, prefix)
    except OSError as err:
        rank_zero_warn(f"Could not write the simulator gate report to {directory}: {err}")


class GateDashboards:
    """The Trainer's loggers as the gate uses them; a gate logger that fails is switched off for a while.

    W&B and TensorBoard loggers get the gate loggers' curves, media and alerts; every other Lightning logger gets
    the scalars with the epoch, as Lightning logs a validation run's metrics. A gate logger whose curves fail warns
    once and is tried again at the next check, then after 1, 2, 4, ... checks while it keeps failing, so a passing
    fault (a full disk that was cleared, a dropped connection) costs no later curve. A failing media or alert call
    drops only that part (:meth:`GateLogger.optional_part`); another Lightning logger that fails is switched off for
    the run.
    """

    def __init__(self) -> None:
        self.gate_loggers: list[GateLogger] = []
        self.dead_loggers: set[int] = set()
        self._backoffs: dict[int, PartBackoff] = {}

    def attach(self, trainer: pl.Trainer) -> None:
        """Wrap the Trainer's W&B and TensorBoard loggers (rank zero only); a failure leaves the dashboards off."""
        self.gate_loggers = _gate_loggers_for(trainer) if trainer.is_global_zero else []

    @rank_zero_only
    def log(self, trainer: pl.Trainer, check: GateCheck, scalars: dict[str, float]) -> None:
        """Send one check to every live logger."""
        covered = {id(gate_logger.lightning_logger) for gate_logger in self.gate_loggers}
        row = {**scalars, "epoch": check.epoch}  # as Lightning logs a validation run's metrics: with the epoch
        for logger in trainer.loggers:
            if id(logger) in covered | self.dead_loggers:
                continue
            if not _guarded(lambda lg=logger: lg.log_metrics(row, step=check.dashboard_step), type(logger).__name__):
                self.dead_loggers.add(id(logger))
        for gate_logger in self.gate_loggers:
            backoff = self._backoffs.setdefault(id(gate_logger), PartBackoff(first_skip=0))
            if not backoff.due():
                continue
            try:
                gate_logger.log_check(check)
            except Exception as err:  # a dashboard must never stop training
                if backoff.next_skip == backoff.first_skip:  # the first failure of a streak warns; the rest are quiet
                    rank_zero_warn(
                        f"{type(gate_logger).__name__} failed at step {check.step} and is switched off: "
                        f"{type(err).__name__}: {err}; it is tried again at later checks"
                    )
                backoff.failed()
            else:
                backoff.succeeded()

    def finalize(self) -> None:
        """Flush the gate loggers."""
        safe_finalize(self.gate_loggers)


def _gate_loggers_for(trainer: pl.Trainer) -> list[GateLogger]:
    try:
        return gate_loggers_for(trainer)
    except Exception as err:  # a dashboard must never stop training
        rank_zero_warn(f"Simulator gate dashboards are off: {type(err).__name__}: {err}")
        return []


def _guarded(call: Any, name: str) -> bool:
    """Run ``call``; a failure warns and returns False so the caller can drop that logger."""
    try:
        call()
    except Exception as err:  # network down, disk full: the run goes on without this dashboard
        rank_zero_warn(f"Simulator gate logging to {name} failed and is switched off: {type(err).__name__}: {err}")
        return False
    return True
