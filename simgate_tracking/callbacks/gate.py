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
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.callbacks._config import as_callable, as_probe_set
from simgate_tracking.callbacks._schedule import alias, logging_step, slashed_checkpoint_names, why_fit_never_runs
from simgate_tracking.callbacks.progress import gate_progress
from simgate_tracking.gate import DEFAULT_THRESHOLD, GateResult, SimulatorGate
from simgate_tracking.loggers import GateLogger, gate_loggers_for, gate_scalars, safe_finalize, safe_log
from simgate_tracking.probe import ProbeSet
from simgate_tracking.probes.planning import PlanningProbe
from simgate_tracking.report import GateCheck, PlanningResult
from simgate_tracking.rollout import (
    ProbeRunner,
    RolloutError,
    RolloutFn,
    TaskFn,
    preserved_rng,
    resolve_rollout_fn,
    rollout_branch,
)

PREFIX = "simgate"


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
        planning_probe: Closed-loop planning in the real environment
            (:class:`~simgate_tracking.probes.planning.PlanningProbe`), costlier than the gate, so it runs less often.
        planning_every_n_checks: Run the planning probe every this many gate checks.

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
        planning_probe: PlanningProbe | None = None,
        planning_every_n_checks: int = 5,
        value_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        probe_set = as_probe_set(probe_set)
        given_rollout: RolloutFn | None = as_callable(rollout_fn, "rollout_fn")
        task: TaskFn | None = as_callable(task_fn, "task_fn")
        for name, value, low in (
            ("every_n_epochs", every_n_epochs, 1),
            ("num_sample_episodes", num_sample_episodes, 0),
            ("planning_every_n_checks", planning_every_n_checks, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
        if task is not None and probe_set.outcomes is None:
            raise ValueError("Expected `probe_set.outcomes` (real task outcomes) with a `task_fn` but got None")
        if planning_probe is not None and not isinstance(planning_probe, PlanningProbe):
            raise ValueError(
                "Expected argument `planning_probe` to be a PlanningProbe or None but got "
                f"{type(planning_probe).__name__}"
            )
        self.probe_set = probe_set
        self.gate = SimulatorGate(threshold)
        self.every_n_epochs = every_n_epochs
        self.rollout_fn = given_rollout
        self._given_rollout_fn = given_rollout
        self.runner = ProbeRunner(probe_set, batch_size=batch_size, task_fn=task, value_range=value_range)
        self.sample_episodes = tuple(range(min(num_sample_episodes, len(probe_set))))
        self.report_dir = None if report_dir is None else Path(report_dir)
        self.alert_policy = alert_policy or AlertPolicy()
        self.planning_probe = planning_probe
        self.planning_every_n_checks = planning_every_n_checks
        self.history: list[GateResult] = []
        self.last_check: GateCheck | None = None
        self.validation_runs = 0
        self._gate_loggers: list[GateLogger] = []
        self._dead_loggers: set[int] = set()
        self._checks_this_fit = 0
        self._said_never_runs = False

    @property
    def state_key(self) -> str:
        """Checkpoint key; several instances with different settings can live in one checkpoint."""
        return self._generate_state_key(probe=self.probe_set.manifest_hash[:16], every_n_epochs=self.every_n_epochs)

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
        self._gate_loggers = _gate_loggers_for(trainer) if trainer.is_global_zero else []
        for filename, name in slashed_checkpoint_names(trainer):
            if name.startswith(f"{PREFIX}/"):
                rank_zero_warn(
                    f"ModelCheckpoint(filename={filename!r}) saves into a folder: Lightning writes the metric's name "
                    f"before its value and the '/' in {name!r} becomes a path. Write '{{{alias(name)}:.3f}}' (the "
                    f"same score under a name without '/'), or pass `auto_insert_metric_name=False` with "
                    f"'{alias(name).removeprefix(PREFIX + '_')}={{{name}:.3f}}'."
                )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Warn if this fit will never run the gate; one dry rollout: a probe set that does not fit fails now."""
        self._checks_this_fit = 0
        reason = why_fit_never_runs(trainer, pl_module, self.every_n_epochs)
        self._said_never_runs = reason is not None
        if reason is not None:
            rank_zero_warn(
                f"SimulatorGateCallback will never run during this fit: {reason}. No simulator scores, reports or "
                "gate decisions will come; score a checkpoint with `trainer.validate(model)`."
            )
        assert self.rollout_fn is not None  # resolved in setup
        batch = next(self.probe_set.batches(1, device=pl_module.device))
        was_training = pl_module.training
        try:
            pl_module.eval()
            with torch.no_grad(), preserved_rng([pl_module.device]):
                rollout_branch(
                    self.rollout_fn,
                    batch.context,
                    batch.actions[:, 0],
                    self.probe_set.seeds[:1],
                    (self.probe_set.horizon, *self.probe_set.frame_shape),
                )
        except Exception as err:  # the model's own error on inputs it cannot take is the same misfit
            raise RolloutError(
                f"The probe set {self.probe_set.name!r} does not fit the model: a dry rollout of episode 0 with "
                f"context {tuple(batch.context.shape)} and actions {tuple(batch.actions[:, 0].shape)} failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        finally:
            pl_module.train(was_training)

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
        assert self.rollout_fn is not None  # resolved in setup
        indices = self.probe_set.shard(trainer.global_rank, trainer.world_size)
        was_training = pl_module.training
        total = 2 * self.probe_set.num_batches(self.runner.batch_size, len(indices))
        # trainer.validate runs under inference mode, whose tensors the scorecard's in-place sums cannot take
        with torch.inference_mode(False), torch.no_grad():
            scorecard = self.runner.make_scorecard(episode_scores=True).to(pl_module.device)
            try:
                pl_module.eval()
                with gate_progress(trainer, total) as progress:
                    samples = self.runner.run(
                        self.rollout_fn, scorecard, pl_module.device, indices, progress, self.sample_episodes
                    )
                due = not fitting or not len(self.history) % self.planning_every_n_checks
                planning = self._plan(trainer, pl_module, due=due)
            finally:
                pl_module.train(was_training)
            scores = {**scorecard.compute(), **planning[1]}
            result = self.gate.evaluate(scores, real_baseline=scorecard.real_baseline())
            table = {name: values.tolist() for name, values in scorecard.episode_scores().items()}
        step = trainer.global_step
        return GateCheck(
            result=result,
            step=step,
            epoch=trainer.current_epoch,
            manifest_hash=self.probe_set.manifest_hash,
            probe_name=self.probe_set.name,
            episode_scores=table,
            alerts=tuple(self.alert_policy.update(result, step)) if fitting else (),
            samples=samples if trainer.is_global_zero else None,
            planning=planning[0],
            log_step=logging_step(trainer),
        )

    def _plan(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, due: bool
    ) -> tuple[PlanningResult | None, dict[str, float]]:
        """The planning probe on rank zero when ``due``; its scores on every rank.

        Due at every ``planning_every_n_checks``-th check of a fit, and at the check of validate.
        """
        if self.planning_probe is None or not due:
            return None, {}
        result = None
        if trainer.is_global_zero:
            try:
                result = self.planning_probe.run(self.rollout_fn, device=pl_module.device)
            except Exception as err:  # a planning probe that does not fit the model must not stop training
                rank_zero_warn(f"The planning probe failed and is skipped at this check: {type(err).__name__}: {err}")
        # every rank takes rank zero's scores, so every rank's metrics and gate verdict are the same
        scores = trainer.strategy.broadcast({} if result is None else result.scores(), src=0)
        return result, scores

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
                self._write_report(check, "check" if fitting else "validate")
            self._log_to_dashboards(trainer, check, scalars)

    def _write_report(self, check: GateCheck, prefix: str) -> None:
        assert self.report_dir is not None
        try:
            check.write(self.report_dir, prefix)
        except OSError as err:
            rank_zero_warn(f"Could not write the simulator gate report to {self.report_dir}: {err}")

    @rank_zero_only
    def _log_to_dashboards(self, trainer: pl.Trainer, check: GateCheck, scalars: dict[str, float]) -> None:
        covered = {id(gate_logger.lightning_logger) for gate_logger in self._gate_loggers}
        row = {**scalars, "epoch": check.epoch}  # as Lightning logs a validation run's metrics: with the epoch
        for logger in trainer.loggers:
            if id(logger) in covered | self._dead_loggers:
                continue
            if not _guarded(lambda lg=logger: lg.log_metrics(row, step=check.dashboard_step), type(logger).__name__):
                self._dead_loggers.add(id(logger))
        alive = safe_log(self._gate_loggers, check)
        self._dead_loggers.update(id(g.lightning_logger) for g in self._gate_loggers if g not in alive)
        self._gate_loggers = alive

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Flush the dashboards; warn if the fit ran no check that its start did not already warn of."""
        safe_finalize(self._gate_loggers)
        if not self._checks_this_fit and not self._said_never_runs:
            rank_zero_warn(
                "SimulatorGateCallback ran no check during this fit: no validation run reached the gate (empty "
                f"validation data, a fit stopped early, or fewer than `every_n_epochs={self.every_n_epochs}` "
                "validation runs). Score the model with `trainer.validate(model)`."
            )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Flush the dashboards after ``trainer.validate``, which has no end of fit."""
        if trainer.state.fn == TrainerFn.VALIDATING:
            safe_finalize(self._gate_loggers)

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """The callback's memory across checks, as a plain dict for checkpoints."""
        return {
            "history": [result.to_dict() for result in self.history],
            "validation_runs": self.validation_runs,
            "alert_policy": self.alert_policy.state_dict(),
            "manifest_hash": self.probe_set.manifest_hash,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; keys an older checkpoint lacks keep their defaults."""
        self.history = [GateResult.from_dict(item) for item in state_dict.get("history", [])]
        self.validation_runs = int(state_dict.get("validation_runs", 0))
        self.alert_policy.load_state_dict(state_dict.get("alert_policy", {}))
        stored = state_dict.get("manifest_hash")
        if stored is not None and stored != self.probe_set.manifest_hash:
            rank_zero_warn(
                "The checkpoint's simulator gate history was scored on another probe set "
                f"({stored[:12]} vs {self.probe_set.manifest_hash[:12]}): its curves will not compare with new checks"
            )


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
