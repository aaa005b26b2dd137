"""Probe sets from real environments: any Gymnasium environment, MiniGrid built in.

``build_probe_set`` plays a reference policy and K counterfactual branches from each seeded reset and records the
real futures; ``EnvironmentReplay`` is the environment as its own world model, to check the pipeline end to end.
MiniGrid helpers (environments, action encoding, object masks, an expert and a task judge) live in
:mod:`simgate_tracking.probes.minigrid`. Gymnasium is imported only when an environment is made.
"""

from simgate_tracking.probes.actions import ActionEncoder, BoxActions, DiscreteActions, action_encoder_for
from simgate_tracking.probes.episodes import MaskExtractor, Policy
from simgate_tracking.probes.gymnasium import build_probe_set
from simgate_tracking.probes.replay import EnvironmentReplay
from simgate_tracking.probes.snapshot import CloneFn, RestoreFn

__all__ = [
    "ActionEncoder",
    "BoxActions",
    "CloneFn",
    "DiscreteActions",
    "EnvironmentReplay",
    "MaskExtractor",
    "Policy",
    "RestoreFn",
    "action_encoder_for",
    "build_probe_set",
]
