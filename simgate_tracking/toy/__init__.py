"""A built-in action-conditioned toy world, its probe sets and training data, and a small world model for it."""

from typing import Any

from simgate_tracking.toy.policies import POLICIES
from simgate_tracking.toy.probes import make_probe_set
from simgate_tracking.toy.task import reached_goal
from simgate_tracking.toy.world import ACTIONS, ToyEpisode, ToyState, ToyWorld, take_seed

# the model and data pull in Lightning: imported on first use, so the world alone stays light
_LAZY = {
    "ToyWorldModel": "simgate_tracking.toy.model",
    "ToyWorldDataModule": "simgate_tracking.toy.data",
    "ToyWorldDataset": "simgate_tracking.toy.data",
}

__all__ = [
    "ACTIONS",
    "POLICIES",
    "ToyEpisode",
    "ToyState",
    "ToyWorld",
    "ToyWorldDataModule",
    "ToyWorldDataset",
    "ToyWorldModel",
    "make_probe_set",
    "reached_goal",
    "take_seed",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simgate_tracking.toy' has no attribute {name!r}")
