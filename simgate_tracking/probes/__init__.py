"""Probe sets from real environments: any Gymnasium environment, MiniGrid built in.

``build_probe_set`` plays a reference policy and K counterfactual branches from each seeded reset and records the
real futures, in R >= 1 takes of the world's randomness; ``EnvironmentReplay`` is the environment as its own world
model, to check the pipeline end to end (and, in a stochastic world, a held-out real take). ``sticky_actions`` makes a
deterministic world stochastic.
MiniGrid helpers (environments, action encoding, object masks, an expert and a task judge) live in
:mod:`simgate_tracking.probes.minigrid`. Gymnasium is imported only when an environment is made.
"""

from simgate_tracking.probes.actions import ActionEncoder, BoxActions, DiscreteActions, action_encoder_for
from simgate_tracking.probes.episodes import MaskExtractor, Policy, ReseedFn, take_seed
from simgate_tracking.probes.gymnasium import build_probe_set
from simgate_tracking.probes.replay import EnvironmentReplay
from simgate_tracking.probes.snapshot import CloneFn, RestoreFn
from simgate_tracking.probes.sticky import sticky_actions
from simgate_tracking.probes.windows import TrainingWindows

__all__ = [
    "ActionEncoder",
    "BoxActions",
    "CloneFn",
    "DiscreteActions",
    "EnvironmentReplay",
    "MaskExtractor",
    "Policy",
    "ReseedFn",
    "RestoreFn",
    "TrainingWindows",
    "action_encoder_for",
    "build_probe_set",
    "sticky_actions",
    "take_seed",
]
