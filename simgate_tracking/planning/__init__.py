"""Closed-loop planning on the world model: a planner imagines with the model, acts in reality, and must succeed.

The callback needs only :class:`PlanningResult` and :class:`PlanningProbeLike` (from the light
``simgate_tracking.planning.result``); everything else loads on first use, so ``import simgate_tracking.callbacks``
pulls in no real environment.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from simgate_tracking.planning.result import PlanningProbeLike, PlanningResult

if TYPE_CHECKING:
    from simgate_tracking.planning.box_environment import BoxPlanningEnvironment, GymBoxPlanningEnvironment
    from simgate_tracking.planning.continuous import GaussianPlanner
    from simgate_tracking.planning.continuous_probe import ContinuousPlanningProbe
    from simgate_tracking.planning.environments import GymPlanningEnvironment, PlanningEnvironment
    from simgate_tracking.planning.judges import goal_progress, minigrid_goal_progress
    from simgate_tracking.planning.planner import CrossEntropyPlanner, Plan
    from simgate_tracking.planning.probe import PlanningProbe
    from simgate_tracking.planning.pusher import PUSHER_CAMERA, pusher_goal_progress

_LAZY = {
    "BoxPlanningEnvironment": "simgate_tracking.planning.box_environment",
    "ContinuousPlanningProbe": "simgate_tracking.planning.continuous_probe",
    "CrossEntropyPlanner": "simgate_tracking.planning.planner",
    "GaussianPlanner": "simgate_tracking.planning.continuous",
    "GymBoxPlanningEnvironment": "simgate_tracking.planning.box_environment",
    "PUSHER_CAMERA": "simgate_tracking.planning.pusher",
    "GymPlanningEnvironment": "simgate_tracking.planning.environments",
    "Plan": "simgate_tracking.planning.planner",
    "PlanningEnvironment": "simgate_tracking.planning.environments",
    "PlanningProbe": "simgate_tracking.planning.probe",
    "goal_progress": "simgate_tracking.planning.judges",
    "minigrid_goal_progress": "simgate_tracking.planning.judges",
    "pusher_goal_progress": "simgate_tracking.planning.pusher",
}

__all__ = [
    "PUSHER_CAMERA",
    "BoxPlanningEnvironment",
    "ContinuousPlanningProbe",
    "CrossEntropyPlanner",
    "GaussianPlanner",
    "GymBoxPlanningEnvironment",
    "GymPlanningEnvironment",
    "Plan",
    "PlanningEnvironment",
    "PlanningProbe",
    "PlanningProbeLike",
    "PlanningResult",
    "goal_progress",
    "minigrid_goal_progress",
    "pusher_goal_progress",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simgate_tracking.planning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
