"""A built-in action-conditioned toy world, its probe sets and training data, and a small world model for it."""

from typing import Any

from simgate_tracking.toy.policies import POLICIES
from simgate_tracking.toy.probes import make_probe_set
from simgate_tracking.toy.task import reached_goal
from simgate_tracking.toy.world import ACTIONS, ToyEpisode, ToyState, ToyWorld, take_seed

# the model and data pull in Lightning, the planning task the planning probe: imported on first use, so the world
# alone stays light
_LAZY = {
    "ToyPlanningEnvironment": "simgate_tracking.toy.planning",
    "toy_goal_progress": "simgate_tracking.toy.planning",
    "ToyWorldModel": "simgate_tracking.toy.model",
    "ToyWorldDataModule": "simgate_tracking.toy.data",
    "ToyWorldDataset": "simgate_tracking.toy.data",
}

__all__ = [
    "ACTIONS",
    "POLICIES",
    "ToyEpisode",
    "ToyPlanningEnvironment",
    "ToyState",
    "ToyWorld",
    "ToyWorldDataModule",
    "ToyWorldDataset",
    "ToyWorldModel",
    "make_probe_set",
    "reached_goal",
    "take_seed",
    "toy_goal_progress",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simgate_tracking.toy' has no attribute {name!r}")
