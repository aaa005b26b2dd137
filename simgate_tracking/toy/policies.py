"""Scripted policies that choose the toy world's actions: the behaviour probe branches and training data show."""

from __future__ import annotations

import numpy as np

from simgate_tracking.toy.world import AGENT_SIZE, GOAL_SIZE, ToyState, ToyWorld

POLICIES: tuple[str, ...] = ("seek", "wander", "flee")
_RANDOM_MOVE = 0.15  # even a goal seeker slips now and then, so seeking episodes do not all look alike
_KEEP_HEADING = 0.7  # a wanderer keeps its heading for a few steps, as a person exploring would


def _toward(agent: tuple[int, int], goal: tuple[int, int], rng: np.random.Generator, away: bool) -> int:
    dx = goal[0] + GOAL_SIZE / 2 - (agent[0] + AGENT_SIZE / 2)
    dy = goal[1] + GOAL_SIZE / 2 - (agent[1] + AGENT_SIZE / 2)
    if away:
        dx, dy = -dx, -dy
    horizontal = abs(dx) > abs(dy) or (abs(dx) == abs(dy) and rng.random() < 0.5)
    if horizontal:
        return 4 if dx > 0 else 3
    return 2 if dy > 0 else 1


def policy_actions(world: ToyWorld, state: ToyState, policy: str, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """``horizon`` action indices that ``policy`` takes from ``state``.

    ``seek`` heads for the goal (with an occasional random move), ``wander`` walks at random keeping its heading
    for a few steps, ``flee`` heads away from the goal.

    Args:
        world: The world whose agent moves.
        state: The state the actions start from.
        policy: One of :data:`POLICIES`.
        horizon: The number of actions.
        rng: The source of randomness.

    Raises:
        ValueError: If ``policy`` is unknown.

    Example:
        >>> world = ToyWorld()
        >>> state = world.reset(seed=0)
        >>> policy_actions(world, state, "seek", 4, np.random.default_rng(0)).tolist()  # down, a slip left, down
        [2, 3, 0, 2]
    """
    if policy not in POLICIES:
        raise ValueError(f"Expected argument `policy` to be one of {POLICIES} but got {policy!r}")
    agent = state.agent
    actions = np.zeros(horizon, dtype=np.int64)
    heading = int(rng.integers(0, 5))
    for t in range(horizon):
        if policy == "wander":
            heading = heading if rng.random() < _KEEP_HEADING else int(rng.integers(0, 5))
            action = heading
        elif rng.random() < _RANDOM_MOVE:
            action = int(rng.integers(0, 5))
        else:
            action = _toward(agent, state.goal, rng, away=policy == "flee")
        actions[t] = action
        agent = world.move_agent(agent, action)
    return actions
