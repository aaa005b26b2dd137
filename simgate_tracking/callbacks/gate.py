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
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from simgate_tracking.alerts import AlertPolicy
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

    Every ``every_n_epochs`` validation runs of ``fit`` (never the sanity check), with the model in eval mode and
    gradients off, it rolls out every probe episode's reference and counterfactual branches (batched, on the
    module's device, one seeded ``torch.Generator`` per episode), rolls the reference branch out again in reverse
    batch order (reset reproducibility), judges task outcomes with ``task_fn``, and produces a
    :class:`~simgate_tracking.GateResult`. Then it:

    - puts ``simgate/<axis>``, ``simgate/min_axis``, ``simgate/passed``, ``simgate/weakest_axis`` (index into
      :data:`~simgate_tracking.AXES`) and ``simgate/psnr``, ``simgate/ssim``, ``simgate/delta_psnr`` in
      ``trainer.callback_metrics``, so ``EarlyStopping`` and ``ModelCheckpoint`` can monitor them;
    - with a ``planning_probe``, every ``planning_every_n_checks`` checks (the first one included) plans with the
      model in the real environment on rank zero and adds ``simgate/planning_success`` and
      ``simgate/planning_success_real`` (the same planner imagining with the real environment), broadcast to every
      rank; not gated unless ``threshold`` names them;
    - writes ``simgate/check-<step>.json`` under the run's log directory (rank zero only);
    - sends curves, sample rollouts and alerts to the Trainer's W&B and TensorBoard loggers, and the scalars to
      every other Lightning logger.

    RNG states, train/eval mode and grad mode are restored: training with and without the callback gives the same
    weights. Under DDP, each rank scores its shard of the probe episodes and metric states are synced.

    Args:
        probe_set: The probe episodes, the same at every check.
        threshold: One gate threshold, or per-axis thresholds.
        every_n_epochs: Run the gate every this many validation runs.
        rollout_fn: ``rollout(context, actions, generator=None) -> frames``; default: the LightningModule's
            ``rollout`` method.
        task_fn: Judges task outcomes on model futures, ``(B, T, C, H, W) -> (B,)``; needs probe outcomes.
        batch_size: Episodes per world-model call.
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
        probe_set: ProbeSet,
        threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
        every_n_epochs: int = 1,
        rollout_fn: RolloutFn | None = None,
        task_fn: TaskFn | None = None,
        batch_size: int = 8,
        num_sample_episodes: int = 2,
        report_dir: str | os.PathLike[str] | None = None,
        alert_policy: AlertPolicy | None = None,
        planning_probe: PlanningProbe | None = None,
        planning_every_n_checks: int = 5,
    ) -> None:
        if not isinstance(probe_set, ProbeSet):
            raise ValueError(f"Expected argument `probe_set` to be a ProbeSet but got {type(probe_set).__name__}")
        for name, value, low in (
            ("every_n_epochs", every_n_epochs, 1),
            ("num_sample_episodes", num_sample_episodes, 0),
            ("planning_every_n_checks", planning_every_n_checks, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
        if task_fn is not None and probe_set.outcomes is None:
            raise ValueError("Expected `probe_set.outcomes` (real task outcomes) with a `task_fn` but got None")
        if planning_probe is not None and not isinstance(planning_probe, PlanningProbe):
            raise ValueError(
                "Expected argument `planning_probe` to be a PlanningProbe or None but got "
                f"{type(planning_probe).__name__}"
            )
        self.probe_set = probe_set
        self.gate = SimulatorGate(threshold)
        self.every_n_epochs = every_n_epochs
        self.rollout_fn = rollout_fn
        self.runner = ProbeRunner(probe_set, batch_size=batch_size, task_fn=task_fn)
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

    @property
    def state_key(self) -> str:
        """Checkpoint key; several instances with different settings can live in one checkpoint."""
        return self._generate_state_key(probe=self.probe_set.manifest_hash[:16], every_n_epochs=self.every_n_epochs)

    # ----------------------------------------------------------------- setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Resolve the rollout function, the report directory and the Trainer's dashboards."""
        if stage != TrainerFn.FITTING:
            return
        if self.rollout_fn is None:
            self.rollout_fn = resolve_rollout_fn(pl_module)
        if self.report_dir is None:
            self.report_dir = Path(trainer.log_dir or trainer.default_root_dir) / PREFIX
        self._gate_loggers = _gate_loggers_for(trainer) if trainer.is_global_zero else []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """One dry rollout of the first probe episode: a probe set that does not fit the model fails now."""
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
        """Run the gate, every ``every_n_epochs`` validation runs of ``fit``, never during the sanity check."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self.validation_runs += 1
        if self.validation_runs % self.every_n_epochs:
            return
        check = self.run_check(trainer, pl_module)
        self._publish(trainer, pl_module, check)

    def run_check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> GateCheck:
        """Roll out this rank's shard of the probe set, sync the scorecard and judge it."""
        assert self.rollout_fn is not None  # resolved in setup
        indices = self.probe_set.shard(trainer.global_rank, trainer.world_size)
        scorecard = self.runner.make_scorecard(episode_scores=True).to(pl_module.device)
        was_training = pl_module.training
        total = 2 * self.probe_set.num_batches(self.runner.batch_size, len(indices))
        try:
            pl_module.eval()
            with torch.no_grad(), gate_progress(trainer, total) as progress:
                samples = self.runner.run(
                    self.rollout_fn, scorecard, pl_module.device, indices, progress, self.sample_episodes
                )
            planning = self._plan(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        result = self.gate.evaluate({**scorecard.compute(), **planning[1]}, real_baseline=scorecard.real_baseline())
        table = {name: values.tolist() for name, values in scorecard.episode_scores().items()}
        step = trainer.global_step
        return GateCheck(
            result=result,
            step=step,
            epoch=trainer.current_epoch,
            manifest_hash=self.probe_set.manifest_hash,
            probe_name=self.probe_set.name,
            episode_scores=table,
            alerts=tuple(self.alert_policy.update(result, step)),
            samples=samples if trainer.is_global_zero else None,
            planning=planning[0],
        )

    def _plan(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> tuple[PlanningResult | None, dict[str, float]]:
        """The planning probe on rank zero at every ``planning_every_n_checks``-th check; its scores on every rank."""
        if self.planning_probe is None or len(self.history) % self.planning_every_n_checks:
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
    def _publish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, check: GateCheck) -> None:
        self.history.append(check.result)
        self.last_check = check
        scalars = gate_scalars(check.result, thresholds=False)
        # the callback's own metrics; dashboards get them from the gate loggers or from log_metrics below
        pl_module.log_dict(
            {k: torch.tensor(v, device=pl_module.device) for k, v in scalars.items()},
            logger=False,
            sync_dist=True,  # equal on every rank already; this only tells Lightning so
            on_step=False,
            on_epoch=True,
            batch_size=1,
        )
        for alert in check.alerts:
            rank_zero_warn(alert.text, category=UserWarning)
        if trainer.is_global_zero:
            self._write_report(check)
            self._log_to_dashboards(trainer, check, scalars)

    def _write_report(self, check: GateCheck) -> None:
        assert self.report_dir is not None
        try:
            check.write(self.report_dir)
        except OSError as err:
            rank_zero_warn(f"Could not write the simulator gate report to {self.report_dir}: {err}")

    @rank_zero_only
    def _log_to_dashboards(self, trainer: pl.Trainer, check: GateCheck, scalars: dict[str, float]) -> None:
        covered = {id(gate_logger.lightning_logger) for gate_logger in self._gate_loggers}
        for logger in trainer.loggers:
            if id(logger) in covered | self._dead_loggers:
                continue
            if not _guarded(lambda lg=logger: lg.log_metrics(scalars, step=check.step), type(logger).__name__):
                self._dead_loggers.add(id(logger))
        alive = safe_log(self._gate_loggers, check)
        self._dead_loggers.update(id(g.lightning_logger) for g in self._gate_loggers if g not in alive)
        self._gate_loggers = alive

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Flush the dashboards."""
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
