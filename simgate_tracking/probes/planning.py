"""Old import path of the closed-loop planning probe, kept so existing code runs: use :mod:`simgate_tracking.planning`.

The toy world's planning task now lives in :mod:`simgate_tracking.toy.planning`.
"""

import warnings

from simgate_tracking.planning.environments import GymPlanningEnvironment, PlanningEnvironment
from simgate_tracking.planning.judges import goal_progress, minigrid_goal_progress
from simgate_tracking.planning.planner import CrossEntropyPlanner
from simgate_tracking.planning.probe import PlanningProbe
from simgate_tracking.planning.result import PlanningResult
from simgate_tracking.toy.planning import ToyPlanningEnvironment, toy_goal_progress

__all__ = [
    "CrossEntropyPlanner",
    "GymPlanningEnvironment",
    "PlanningEnvironment",
    "PlanningProbe",
    "PlanningResult",
    "ToyPlanningEnvironment",
    "goal_progress",
    "minigrid_goal_progress",
    "toy_goal_progress",
]

warnings.warn(
    "simgate_tracking.probes.planning moved to simgate_tracking.planning, its toy world task to "
    "simgate_tracking.toy.planning; the old path will go in a future release",
    DeprecationWarning,
    stacklevel=2,
)
