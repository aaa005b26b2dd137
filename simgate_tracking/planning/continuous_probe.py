"""Closed-loop planning with continuous actions: a Gaussian cross-entropy planner imagines with the world model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from simgate_tracking.planning.box_environment import BoxPlanningEnvironment
from simgate_tracking.planning.continuous import GaussianPlanner
from simgate_tracking.planning.probe import Context, Imagine, PlanningProbe
from simgate_tracking.rollout import RolloutFn, TaskFn, rollout_branch

__all__ = ["ContinuousPlanningProbe"]


class ContinuousPlanningProbe(PlanningProbe):
    """Closed-loop planning over ``Box`` actions: the planning probe with a :class:`GaussianPlanner` (CEM).

    Everything else is :class:`~simgate_tracking.planning.PlanningProbe`'s: model-predictive control in the real
    environment from each seed, all candidates imagined in one ``rollout`` call and judged by ``task_fn``, the
    same planner with the same random draws imagining with the real environment as the baseline in the same
    :class:`~simgate_tracking.planning.PlanningResult` (``planning_success_real``), ``context="observed"`` or
    ``"reset"``, determinism and restored RNG states. The world model sees the actions as they are, (B, T, A)
    floats in the action box (the probe set's ``BoxActions`` encoding).

    Args:
        environment: The real environment (:class:`~simgate_tracking.planning.BoxPlanningEnvironment`, e.g.
            :class:`~simgate_tracking.planning.GymBoxPlanningEnvironment` on Pusher).
        task_fn: Judges imagined futures, ``(B, T, C, H, W) -> (B,)`` task values, higher is better (graded, such
            as :func:`~simgate_tracking.planning.pusher_goal_progress`).
        seeds: Reset seeds, one episode each.
        max_steps: Real steps an episode may take before it counts as failed.
        horizon: Actions per imagined sequence.
        candidates: Sequences imagined per planner iteration (the population).
        iterations: Planner iterations per decision (1: random shooting).
        elites: Sequences the planner's Gaussians are refitted to.
        replan_every: Real steps played from each plan before planning again, 1 to ``horizon``.
        context: ``"observed"`` or ``"reset"``, what the world model imagines from.
        num_sample_episodes: Episodes whose frames are kept for dashboards.
        seed: Seeds the planner's random draws.

    Raises:
        ValueError: On a bad argument, naming it.

    Example:
        >>> import torch
        >>> from simgate_tracking.planning.continuous_probe import ContinuousPlanningProbe
        >>> class Dot:  # a dot on a line, pushed by an action in [-1, 1]; the goal is the right edge
        ...     action_low, action_high = torch.tensor([-1.0]), torch.tensor([1.0])
        ...     def frame(self):
        ...         image = torch.zeros(3, 1, 8)
        ...         image[:, 0, round(self.x)] = 1.0
        ...         return image
        ...     def reset(self, seed):
        ...         self.x = 3.0
        ...         return self.frame()[None]
        ...     def step(self, action):
        ...         self.x = min(max(self.x + 2 * float(action[0]), 0.0), 7.0)
        ...         return self.frame()
        ...     def succeeded(self):
        ...         return self.x >= 6.5
        ...     def save(self):
        ...         return self.x
        ...     def restore(self, state):
        ...         self.x = state
        >>> def rightward(frames):  # progress: the mean position of the dot over the imagined steps
        ...     return (frames[:, :, 0, 0] * torch.arange(8.0)).sum(dim=2).mean(dim=1)
        >>> def still(context, actions, generator=None):  # a world model that ignores actions
        ...     return context[:, -1:].expand(-1, actions.shape[1], -1, -1, -1)
        >>> probe = ContinuousPlanningProbe(Dot(), rightward, seeds=[0], max_steps=4, horizon=2, candidates=8)
        >>> probe.run(still).summary()
        'planning: 0/1 episodes reach the goal with the model, 1/1 with the real environment'
    """

    environment: BoxPlanningEnvironment  # type: ignore[assignment]  # continuous actions, not indices
    planner: GaussianPlanner  # type: ignore[assignment]

    def __init__(
        self,
        environment: BoxPlanningEnvironment,
        task_fn: TaskFn,
        seeds: Sequence[int],
        max_steps: int = 20,
        horizon: int = 6,
        candidates: int = 32,
        iterations: int = 3,
        elites: int = 4,
        replan_every: int = 1,
        context: Context = "observed",
        num_sample_episodes: int = 2,
        seed: int = 0,
    ) -> None:
        # PlanningProbe's own checks ask for discrete actions (num_actions); these ask for an action box instead
        if not isinstance(environment, BoxPlanningEnvironment):
            raise ValueError(
                "Expected argument `environment` to be a BoxPlanningEnvironment (action_low, action_high, reset, "
                f"step, succeeded, save, restore) but got {type(environment).__name__}"
            )
        low, high = torch.as_tensor(environment.action_low), torch.as_tensor(environment.action_high)
        planner = GaussianPlanner(low, high, horizon, candidates, iterations, elites)
        self._configure(
            environment, task_fn, seeds, max_steps, planner, replan_every, context, num_sample_episodes, seed
        )

    def _action(self, entry: Tensor) -> Any:
        """What the real environment plays for one entry of a plan: the (A,) action vector."""
        return entry.detach().cpu().float().clone()

    def _shifted(self, actions: Tensor) -> Tensor:
        """The rest of the last plan, padded with its last action: the planner's first guess for the next one."""
        k = self.replan_every
        return torch.cat([actions[k:], actions[-1:].repeat(k, 1)])

    def _model_imagination(self, rollout_fn: RolloutFn, device: torch.device) -> Imagine:
        def imagine(actions: Tensor, episode: Any, saved: Any) -> tuple[Tensor, Tensor]:
            n, dim = actions.shape[0], actions.shape[2]
            if self.context == "observed":
                context, prefix = episode.observed[-episode.context_frames :], []
            else:
                context, prefix = episode.observed[: episode.context_frames], episode.played
            past = torch.stack(prefix) if prefix else torch.zeros(0, dim)
            plays = torch.cat([past[None].expand(n, -1, -1), actions.float()], dim=1).to(device)
            frames = torch.stack(context).to(device).unsqueeze(0).repeat(n, 1, 1, 1, 1)
            steps = (plays.shape[1], *frames.shape[2:])
            seeds = torch.full((n,), episode.seed, dtype=torch.long)
            futures = rollout_branch(rollout_fn, frames, plays, seeds, steps)[:, len(prefix) :]
            return self._judge(futures), futures

        return imagine
