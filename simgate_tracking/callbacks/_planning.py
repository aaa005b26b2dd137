"""The planning probe at a gate check: it runs on rank zero, and every rank takes its scores.

With sharded parameters (FSDP, DeepSpeed ZeRO-3) every forward pass is a collective: every other rank then makes
rank zero's world-model calls with it.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

from simgate_tracking.planning.result import PlanningProbeLike, PlanningResult
from simgate_tracking.rollout import RolloutFn
from simgate_tracking.sharding import has_sharded_parameters, in_step_on_rank_zero


def check_planning_probe(planning_probe: object) -> PlanningProbeLike | None:
    """``planning_probe`` if it is None or has ``run(world_model, device)``.

    Raises:
        ValueError: If it has no callable ``run``.
    """
    if planning_probe is not None and not (
        isinstance(planning_probe, PlanningProbeLike) and callable(getattr(planning_probe, "run", None))
    ):
        raise ValueError(
            "Expected argument `planning_probe` to be a planning probe with `run(world_model, device)` (such as "
            f"simgate_tracking.planning.PlanningProbe) or None but got {type(planning_probe).__name__}"
        )
    return planning_probe


def planning_scores(
    planning_probe: PlanningProbeLike, trainer: pl.Trainer, rollout_fn: RolloutFn, device: torch.device
) -> tuple[PlanningResult | None, dict[str, float]]:
    """Plan on rank zero; rank zero's scores on every rank, so every rank's metrics and verdict are the same.

    A probe that fails warns and gives no scores: a planning probe that does not fit the model must not stop
    training.
    """
    result: PlanningResult | None = None
    error: BaseException | None = None
    if trainer.world_size > 1 and has_sharded_parameters(trainer.lightning_module):
        result, error = in_step_on_rank_zero(
            lambda rollout: planning_probe.run(rollout, device=device), rollout_fn, device
        )
    elif trainer.is_global_zero:
        try:
            result = planning_probe.run(rollout_fn, device=device)
        except Exception as err:  # whatever the planner or the model raises, training goes on
            error = err
    if error is not None and trainer.is_global_zero:
        rank_zero_warn(f"The planning probe failed and is skipped at this check: {type(error).__name__}: {error}")
    scores = trainer.strategy.broadcast({} if result is None else result.scores(), src=0)
    return result, scores
