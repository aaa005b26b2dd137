"""Task outcomes judged on a batch's model futures, paired with the real outcomes the scorecard compares them to."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from simgate_tracking.functional.task_validity import TaskMode
from simgate_tracking.probe import ProbeBatch
from simgate_tracking.world_model import RolloutError, noted

TaskFn = Callable[[Tensor], Tensor]
TaskOutcomes = tuple[Tensor | None, Tensor | None, Tensor | None]  # judged, real, groups


def judge(task_fn: TaskFn, frames: Tensor, count: int) -> Tensor:
    """``task_fn(frames)``, checked to be ``count`` outcomes.

    Raises:
        RolloutError: If it returns anything else.
    """
    with noted(f"in task_fn(frames) on a batch of {count} rollouts"):
        verdict = task_fn(frames)
    if not isinstance(verdict, Tensor) or tuple(verdict.shape) != (count,):
        got = tuple(verdict.shape) if isinstance(verdict, Tensor) else type(verdict).__name__
        raise RolloutError(f"Expected task_fn(frames) to return outcomes of shape (B,) = ({count},) but got {got}")
    return verdict


def task_outcomes(
    task_fn: TaskFn, mode: TaskMode, per_branch: bool, reference: Tensor, counterfactual: Tensor, batch: ProbeBatch
) -> TaskOutcomes:
    """Judged and real outcomes (and groups) of a batch, as :meth:`SimulatorScorecard.update` takes them.

    One row per episode, or with per-branch outcomes one per (episode, branch) in ranking mode and (B, K+1) in
    decision mode.
    """
    if batch.outcomes is None:
        return None, None, None
    if not per_branch:
        # a copy for the judge: the scorecard and the reset pass read these frames after it
        return judge(task_fn, reference.clone(), len(batch)), batch.outcomes, batch.groups
    branches = counterfactual.shape[1] + 1
    # a new tensor, the judge's alone
    frames = torch.cat([reference.unsqueeze(1), counterfactual], dim=1).flatten(0, 1)
    judged = judge(task_fn, frames, len(batch) * branches)
    if mode == "decision":
        return judged.view(len(batch), branches), batch.outcomes, None
    groups = None if batch.groups is None else batch.groups.repeat_interleave(branches)
    # one row per (episode, branch); with takes, the takes stay in the last dimension
    real = batch.outcomes.flatten() if batch.outcomes.ndim == 2 else batch.outcomes.transpose(1, 2).flatten(0, 1)
    return judged, real, groups
