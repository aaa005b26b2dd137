"""Old import path of the planner, kept so existing code runs: use :mod:`simgate_tracking.planning.planner`."""

import warnings

from simgate_tracking.planning.planner import CrossEntropyPlanner, Plan, ScoreFn

__all__ = ["CrossEntropyPlanner", "Plan", "ScoreFn"]

warnings.warn(
    "simgate_tracking.probes.planning_planner moved to simgate_tracking.planning.planner; "
    "the old path will go in a future release",
    DeprecationWarning,
    stacklevel=2,
)
