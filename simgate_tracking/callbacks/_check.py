"""One gate check of the Lightning callback: roll out this rank's shard, sync the scorecard, judge it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightning.pytorch as pl
import torch

from simgate_tracking.callbacks._planning import planning_scores
from simgate_tracking.callbacks._schedule import logging_step
from simgate_tracking.callbacks.progress import gate_progress
from simgate_tracking.evaluate import judge_scorecard
from simgate_tracking.planning.result import PlanningResult
from simgate_tracking.report import GateCheck
from simgate_tracking.sharding import padded_shard

if TYPE_CHECKING:
    from simgate_tracking.callbacks.gate import SimulatorGateCallback


def run_check(
    callback: SimulatorGateCallback, trainer: pl.Trainer, pl_module: pl.LightningModule, fitting: bool = True
) -> GateCheck:
    """:meth:`SimulatorGateCallback.run_check <simgate_tracking.callbacks.SimulatorGateCallback.run_check>`."""
    assert callback.rollout_fn is not None  # resolved in setup
    # shards padded to one length: every rank makes the same world-model calls (sharded parameters need it)
    shard = padded_shard(len(callback.probe_set), trainer.global_rank, trainer.world_size)
    indices = shard.indices
    was_training = pl_module.training
    total = 2 * callback.probe_set.num_batches(callback.runner.batch_size, len(indices))
    # trainer.validate runs under inference mode, whose tensors the scorecard's in-place sums cannot take
    with torch.inference_mode(False), torch.no_grad():
        scorecard = callback.runner.make_scorecard(episode_scores=True).to(pl_module.device)
        try:
            pl_module.eval()
            with gate_progress(trainer, total) as progress:
                samples = callback.runner.run(
                    callback.rollout_fn,
                    scorecard,
                    pl_module.device,
                    indices,
                    progress,
                    callback.sample_episodes,
                    padding=shard.num_padding,
                )
            due = not fitting or not len(callback.history) % callback.planning_every_n_checks
            planning = _plan(callback, trainer, pl_module, due=due)
        finally:
            pl_module.train(was_training)
        result = judge_scorecard(callback.gate, scorecard, planning[1], callback.confidence_level)
        table = {name: values.tolist() for name, values in scorecard.episode_scores().items()}
    step = trainer.global_step
    return GateCheck(
        result=result,
        step=step,
        epoch=trainer.current_epoch,
        manifest_hash=callback.probe_set.manifest_hash,
        probe_name=callback.probe_set.name,
        episode_scores=table,
        alerts=tuple(callback.alert_policy.update(result, step)) if fitting else (),
        samples=samples if trainer.is_global_zero else None,
        planning=planning[0],
        log_step=logging_step(trainer),
    )


def _plan(
    callback: SimulatorGateCallback, trainer: pl.Trainer, pl_module: pl.LightningModule, due: bool
) -> tuple[PlanningResult | None, dict[str, float]]:
    """The planning probe on rank zero when ``due``; its scores on every rank.

    Due at every ``planning_every_n_checks``-th check of a fit, and at the check of validate.
    """
    if callback.planning_probe is None or not due:
        return None, {}
    assert callback.rollout_fn is not None  # resolved in setup
    return planning_scores(callback.planning_probe, trainer, callback.rollout_fn, pl_module.device)
