"""The Lightning callback that runs the simulator gate on a fixed probe set at validation time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from simgate_tracking._utils import PREFIX, check_int
from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.callbacks._check import run_check
from simgate_tracking.callbacks._config import as_callable, as_probe_set
from simgate_tracking.callbacks._dashboards import GateDashboards, write_report
from simgate_tracking.callbacks._dry_run import dry_rollout
from simgate_tracking.callbacks._planning import check_planning_probe
from simgate_tracking.callbacks._schedule import (
    alias,
    warn_if_fit_never_runs,
    warn_no_check_ran,
    warn_slashed_checkpoint_names,
)
from simgate_tracking.callbacks._state import adopt_old_gate_state, read_gate_state
from simgate_tracking.confidence import DEFAULT_LEVEL, check_level
from simgate_tracking.gate import DEFAULT_THRESHOLD, GateResult, SimulatorGate
from simgate_tracking.loggers import gate_scalars
from simgate_tracking.planning.result import PlanningProbeLike
from simgate_tracking.probe import ProbeSet
from simgate_tracking.report import GateCheck
from simgate_tracking.rollout import ProbeRunner, RolloutFn, TaskFn, resolve_rollout_fn


class SimulatorGateCallback(Callback):
    """Score the model as a simulator on a fixed probe set at the end of validation, and judge it.

    Every ``every_n_epochs`` validation runs of ``fit`` (never the sanity check), and once in ``trainer.validate``,
    with the model in eval mode and gradients off, it rolls out every probe episode's reference and counterfactual
    branches (batched, on the module's device, one seeded ``torch.Generator`` per episode), rolls the reference
    branch out again in reverse batch order (reset reproducibility), judges task outcomes with ``task_fn``, and
    produces a :class:`~simgate_tracking.GateResult`. Then it:

    - puts ``simgate/<axis>``, ``simgate/min_axis``, ``simgate/passed``, ``simgate/weakest_axis`` (index into
      :data:`~simgate_tracking.AXES`) and ``simgate/psnr``, ``simgate/ssim``, ``simgate/delta_psnr`` in
      ``trainer.callback_metrics``, so ``EarlyStopping`` and ``ModelCheckpoint`` can monitor them, each also under
      its name without "/" (``simgate_min_axis``) for checkpoint file names;
    - with a ``planning_probe``, every ``planning_every_n_checks`` checks (the first one included) plans with the
      model in the real environment on rank zero and adds ``simgate/planning_success`` and
      ``simgate/planning_success_real`` (the same planner imagining with the real environment), broadcast to every
      rank; not gated unless ``threshold`` names them;
    - writes ``simgate/check-<step>.json`` under the run's log directory (rank zero only; none under
      ``fast_dev_run``), ``<step>`` being ``trainer.global_step`` as in ``ModelCheckpoint``'s ``{step}``;
    - sends curves, sample rollouts and alerts to the Trainer's W&B and TensorBoard loggers, and the scalars (with
      the epoch) to every other Lightning logger, at the step Lightning logs that validation run's own metrics at.

    ``trainer.validate(model)`` scores the model it validates once, at the end of validation: the same scores in
    ``trainer.callback_metrics`` and on the dashboards, a report ``simgate/validate-<step>.json``, the verdict table
    as a rank-zero message; it adds nothing to the fit's history, alerts or early stopping. ``trainer.test`` and
    ``trainer.predict`` never run the gate, and say so. A fit that will never validate (``limit_val_batches=0``, no
    ``validation_step``, ...) warns at its start, and one that ran no check warns at its end.

    RNG states, train/eval mode and grad mode are restored: training with and without the callback gives the same
    weights. Under DDP, each rank scores its shard of the probe episodes and metric states are synced.

    Args:
        probe_set: The probe episodes, the same at every check: a :class:`~simgate_tracking.ProbeSet`, or the path
            of one written by :meth:`~simgate_tracking.ProbeSet.save` (as a config file gives it).
        threshold: One gate threshold, or per-axis thresholds.
        every_n_epochs: Run the gate every this many validation runs.
        rollout_fn: ``rollout(context, actions, generator=None) -> frames``, or its import string
            (``"package.module:function"`` or ``"package.module.function"``); default: the LightningModule's
            ``rollout`` method.
        task_fn: Judges task outcomes on model futures, ``(B, T, C, H, W) -> (B,)``, or its import string; needs
            probe outcomes.
        batch_size: Episodes per world-model call.
        value_range: The range the world model's frames come in, for example ``(-1, 1)`` for a tanh output or
            ``(0, 255)``: rescaled to [0, 1] before scoring. Frames outside it by more than a tenth of it warn once
            per check, naming the observed range.
        num_sample_episodes: Probe episodes whose rollouts go to the dashboards as media (0: none).
        report_dir: Where JSON reports go; default ``<trainer.log_dir>/simgate``.
        alert_policy: Decides weakest-axis alerts; default :class:`~simgate_tracking.alerts.AlertPolicy`.
        planning_probe: Closed-loop planning in the real environment: a
            :class:`~simgate_tracking.planning.PlanningProbe`, or anything with its ``run(world_model, device)``
            (:class:`~simgate_tracking.planning.PlanningProbeLike`); costlier than the gate, so it runs less often.
        planning_every_n_checks: Run the planning probe every this many gate checks.
        confidence_level: The level of each axis's confidence interval (bootstrap over probe episodes), which
            :attr:`~simgate_tracking.GateResult.verdict` judges: pass, fail or inconclusive.
        name: Tells two gates of one Trainer apart in checkpoints (each keeps its own history); the probe set
            does not, so that a resume with another probe set is seen and warned of.

    Raises:
        ValueError: On an invalid argument.
    """

    def __init__(
        self,
        probe_set: str | os.PathLike[str] | ProbeSet,
        threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
        every_n_epochs: int = 1,
        rollout_fn: str | RolloutFn | None = None,
        task_fn: str | TaskFn | None = None,
        batch_size: int = 8,
        num_sample_episodes: int = 2,
        report_dir: str | os.PathLike[str] | None = None,
        alert_policy: AlertPolicy | None = None,
        planning_probe: PlanningProbeLike | None = None,
        planning_every_n_checks: int = 5,
        value_range: tuple[float, float] = (0.0, 1.0),
        confidence_level: float = DEFAULT_LEVEL,
        name: str | None = None,
    ) -> None:
        probe_set = as_probe_set(probe_set)
        given_rollout: RolloutFn | None = as_callable(rollout_fn, "rollout_fn")
        task: TaskFn | None = as_callable(task_fn, "task_fn")
        check_int(every_n_epochs, "every_n_epochs", 1)
        check_int(num_sample_episodes, "num_sample_episodes", 0)
        check_int(planning_every_n_checks, "planning_every_n_checks", 1)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Expected argument `name` to be None or a non-empty str but got {name!r}")
        if task is not None and probe_set.outcomes is None:
            raise ValueError("Expected `probe_set.outcomes` (real task outcomes) with a `task_fn` but got None")
        self.probe_set = probe_set
        self.gate = SimulatorGate(threshold)
        self.confidence_level = check_level(confidence_level, "confidence_level")
        self.every_n_epochs = every_n_epochs
        self.name = name
        self.rollout_fn = given_rollout
        self._given_rollout_fn = given_rollout
        self.runner = ProbeRunner(probe_set, batch_size=batch_size, task_fn=task, value_range=value_range)
        self.sample_episodes = tuple(range(min(num_sample_episodes, len(probe_set))))
        self.report_dir = None if report_dir is None else Path(report_dir)
        self.alert_policy = alert_policy or AlertPolicy()
        self.planning_probe = check_planning_probe(planning_probe)
        self.planning_every_n_checks = planning_every_n_checks
        self.history: list[GateResult] = []
        self.last_check: GateCheck | None = None
        self.validation_runs = 0
        self._dashboards = GateDashboards()
        self._checks_this_fit = 0
        self._said_never_runs = False

    @property
    def state_key(self) -> str:
        """Checkpoint key, the same whatever the probe set: a resume with another one restarts the history."""
        named = {} if self.name is None else {"name": self.name}  # a name joins the key only when given
        return self._generate_state_key(every_n_epochs=self.every_n_epochs, **named)

    # ----------------------------------------------------------------- setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Resolve the rollout function, the report directory and the Trainer's dashboards (fit and validate)."""
        if stage not in (TrainerFn.FITTING, TrainerFn.VALIDATING):
            rank_zero_warn(
                f"SimulatorGateCallback does not run in `trainer.{TrainerFn(stage).value}()`: the gate scores the "
                "probe set at the end of validation only. Score a model with `trainer.validate(model)` or "
                "`simgate_tracking.evaluate`."
            )
            return
        self.rollout_fn = self._given_rollout_fn or resolve_rollout_fn(pl_module)
        if self.report_dir is None:
            self.report_dir = Path(trainer.log_dir or trainer.default_root_dir) / PREFIX
        self._dashboards.attach(trainer)
        warn_slashed_checkpoint_names(trainer, PREFIX)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Warn if this fit will never run the gate; one dry rollout: a probe set that does not fit fails now."""
        self._checks_this_fit = 0
        self._said_never_runs = warn_if_fit_never_runs(trainer, pl_module, self.every_n_epochs)
        assert self.rollout_fn is not None  # resolved in setup
        dry_rollout(self.probe_set, self.rollout_fn, pl_module)

    # ------------------------------------------------------------------ check
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Run the gate every ``every_n_epochs`` validation runs of ``fit`` and once in ``validate``.

        Never in the sanity check.
        """
        if trainer.sanity_checking:
            return
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._publish(trainer, pl_module, self.run_check(trainer, pl_module, fitting=False), fitting=False)
            return
        if trainer.state.fn != TrainerFn.FITTING:
            return
        self.validation_runs += 1
        if self.validation_runs % self.every_n_epochs:
            return
        check = self.run_check(trainer, pl_module)
        self._publish(trainer, pl_module, check)

    def run_check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, fitting: bool = True) -> GateCheck:
        """Roll out this rank's shard of the probe set, sync the scorecard and judge it.

        ``fitting``: a check of ``fit`` (alerts and the planning schedule follow the fit's checks), else a single
        check of ``validate``.
        """
        return run_check(self, trainer, pl_module, fitting)

    # ---------------------------------------------------------------- publish
    def _publish(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, check: GateCheck, fitting: bool = True
    ) -> None:
        if fitting:  # the fit's memory: early stopping and alerts read it, checkpoints keep it
            self.history.append(check.result)
            self._checks_this_fit += 1
        self.last_check = check
        scalars = gate_scalars(check.result, thresholds=False)
        # the callback's own metrics, also under names without "/" for ModelCheckpoint's file names; dashboards get
        # them from the gate loggers or from log_metrics below
        pl_module.log_dict(
            {name: torch.tensor(v, device=pl_module.device) for k, v in scalars.items() for name in (k, alias(k))},
            logger=False,
            sync_dist=True,  # equal on every rank already; this only tells Lightning so
            on_step=False,
            on_epoch=True,
            batch_size=1,
        )
        for alert in check.alerts:
            rank_zero_warn(alert.text, category=UserWarning)
        if not fitting:
            rank_zero_info(f"Simulator gate on the validated model (step {check.step}):\n{check.result}")
        if trainer.is_global_zero:
            # Lightning writes no logs or checkpoints under fast_dev_run; the gate no reports
            if not getattr(trainer, "fast_dev_run", False):
                assert self.report_dir is not None  # resolved in setup
                write_report(check, self.report_dir, "check" if fitting else "validate")
            self._dashboards.log(trainer, check, scalars)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Flush the dashboards; warn if the fit ran no check that its start did not already warn of."""
        self._dashboards.finalize()
        if not self._checks_this_fit and not self._said_never_runs:
            warn_no_check_ran(self.every_n_epochs)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Flush the dashboards after ``trainer.validate``, which has no end of fit."""
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._dashboards.finalize()

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """The callback's memory across checks, as a plain dict for checkpoints."""
        return {
            "history": [result.to_dict() for result in self.history],
            "validation_runs": self.validation_runs,
            "alert_policy": self.alert_policy.state_dict(),
            "manifest_hash": self.probe_set.manifest_hash,
        }

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Let a checkpoint whose gate state sits under an older key (the probe hash in it) load."""
        states = checkpoint.get("callbacks")
        adopt_old_gate_state(states, self.state_key, self.probe_set.manifest_hash, self.every_n_epochs)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; keys an older checkpoint lacks keep their defaults.

        A bad field warns, naming it, and keeps its default; a history scored on another probe set warns and a new
        history starts (``GateEarlyStopping`` then counts afresh).
        """
        state = read_gate_state(state_dict, self.probe_set.manifest_hash)
        self.history = state.history
        self.validation_runs = state.validation_runs
        self.alert_policy.load_state_dict(state.alert_policy)
