"""What the closed-loop planning probe hands back, and the one method the callback needs from a planning probe.

Light on purpose: the callback imports this module, so it imports neither Gymnasium, MiniGrid nor the toy world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from simgate_tracking.report import RolloutSamples

__all__ = ["PlanningProbeLike", "PlanningResult"]


@dataclass(frozen=True)
class PlanningResult:
    """What the closed-loop planning probe did: success with the world model beside success with reality.

    The same planner plays every episode twice in the real environment: once imagining candidate futures with the
    world model, once imagining them with the real environment (the baseline, the best the planner can do).

    Attributes:
        success: Per episode, whether the planner imagining with the world model reached the goal.
        success_real: Per episode, whether the planner imagining with the real environment reached it.
        steps: Real steps each episode took with the world model (the step limit when it failed).
        steps_real: The same with the real environment.
        sample_index: The episodes whose frames are kept, for dashboards.
        expected: (S, T, C, H, W) after every real step of those episodes, the frame the model expected, or None.
        happened: (S, T, C, H, W) the real frame after that step (the last one repeated once the episode ended).

    Example:
        >>> result = PlanningResult(success=[True, False], success_real=[True, True], steps=[4, 12], steps_real=[4, 6])
        >>> result.scores()
        {'planning_success': 0.5, 'planning_success_real': 1.0}
        >>> result.summary()
        'planning: 1/2 episodes reach the goal with the model, 2/2 with the real environment'
    """

    success: list[bool]
    success_real: list[bool]
    steps: list[int]
    steps_real: list[int]
    sample_index: list[int] = field(default_factory=list)
    expected: Tensor | None = None
    happened: Tensor | None = None

    @property
    def success_rate(self) -> float:
        """The fraction of episodes that reached the goal with the world model."""
        return sum(self.success) / max(len(self.success), 1)

    @property
    def success_rate_real(self) -> float:
        """The fraction of episodes that reached the goal with the real environment."""
        return sum(self.success_real) / max(len(self.success_real), 1)

    def scores(self) -> dict[str, float]:
        """``planning_success`` and ``planning_success_real``, as the gate and the dashboards take them."""
        return {"planning_success": self.success_rate, "planning_success_real": self.success_rate_real}

    def summary(self) -> str:
        """One line: how many episodes reached the goal with the model and with the real environment."""
        n = len(self.success)
        return (
            f"planning: {sum(self.success)}/{n} episodes reach the goal with the model, "
            f"{sum(self.success_real)}/{n} with the real environment"
        )

    def to_report(self) -> dict[str, Any]:
        """Success rates and per-episode outcomes, JSON-ready."""
        return {
            "success_rate": self.success_rate,
            "success_rate_real": self.success_rate_real,
            "success": list(self.success),
            "success_real": list(self.success_real),
            "steps": list(self.steps),
            "steps_real": list(self.steps_real),
        }

    def as_rollouts(self) -> RolloutSamples | None:
        """The kept episodes as sample rollouts, "real" what happened and "model" what the model expected."""
        if self.expected is None or self.happened is None:
            return None
        return RolloutSamples(list(self.sample_index), real=self.happened[:, None], model=self.expected[:, None])


@runtime_checkable
class PlanningProbeLike(Protocol):
    """What :class:`~simgate_tracking.callbacks.SimulatorGateCallback` needs from a planning probe: one ``run``.

    :class:`~simgate_tracking.planning.PlanningProbe` is one; any object with this method can stand in for it.
    """

    def run(self, world_model: Any, device: torch.device | str | None = None) -> PlanningResult:
        """Plan with ``world_model`` (a rollout function or a model with ``rollout``) on ``device``."""
