"""Old import path of the planning environments, kept so existing code runs.

Use :mod:`simgate_tracking.planning.environments`, and :mod:`simgate_tracking.toy.planning` for the toy world's.
"""

import warnings

from simgate_tracking.planning.environments import GymPlanningEnvironment, PlanningEnvironment
from simgate_tracking.toy.planning import ToyPlanningEnvironment

__all__ = ["GymPlanningEnvironment", "PlanningEnvironment", "ToyPlanningEnvironment"]

warnings.warn(
    "simgate_tracking.probes.planning_envs moved to simgate_tracking.planning.environments and "
    "simgate_tracking.toy.planning; the old path will go in a future release",
    DeprecationWarning,
    stacklevel=2,
)
