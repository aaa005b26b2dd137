"""Old import path of the planning judges, kept so existing code runs.

Use :mod:`simgate_tracking.planning.judges`, and :mod:`simgate_tracking.toy.planning` for the toy world's.
"""

import warnings

from simgate_tracking.planning.judges import goal_progress, minigrid_goal_progress
from simgate_tracking.toy.planning import toy_goal_progress

__all__ = ["goal_progress", "minigrid_goal_progress", "toy_goal_progress"]

warnings.warn(
    "simgate_tracking.probes.planning_judges moved to simgate_tracking.planning.judges and "
    "simgate_tracking.toy.planning; the old path will go in a future release",
    DeprecationWarning,
    stacklevel=2,
)
