"""A scripted MiniGrid expert: walk to the goal by the shortest path, fetching the key and opening doors on the way."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
_DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # MiniGrid's DIR_TO_VEC: right, down, left, up
Cell = tuple[int, int]


def _passable(grid: Any, cell: Cell) -> bool:
    obj = grid.get(*cell)
    return obj is None or bool(obj.can_overlap())


def _find(grid: Any, kind: str, color: str | None = None) -> list[Cell]:
    return [
        (x, y)
        for y in range(grid.height)
        for x in range(grid.width)
        if (obj := grid.get(x, y)) is not None and obj.type == kind and (color is None or obj.color == color)
    ]


def _path_next(grid: Any, start: Cell, target: Cell) -> Cell | None:
    """The first cell to enter on a shortest path that ends next to ``target``; ``start`` if already next to it."""
    parents: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if abs(cell[0] - target[0]) + abs(cell[1] - target[1]) == 1:
            while parents[cell] not in (start, None):
                cell = parents[cell]  # type: ignore[assignment]
            return cell
        for dx, dy in _DIRECTIONS:
            nxt = (cell[0] + dx, cell[1] + dy)
            if nxt not in parents and 0 <= nxt[0] < grid.width and 0 <= nxt[1] < grid.height and _passable(grid, nxt):
                parents[nxt] = cell
                queue.append(nxt)
    return None


def _face(direction: int, start: Cell, towards: Cell, then: int) -> int:
    """``then`` if the agent at ``start`` already faces ``towards``, else the turn that brings it round soonest."""
    wanted = _DIRECTIONS.index((towards[0] - start[0], towards[1] - start[1]))
    return then if wanted == direction else (LEFT if (wanted - direction) % 4 == 3 else RIGHT)


def _act(env: Any, target: Cell, action: int) -> int | None:
    """Walk next to ``target`` and play ``action`` facing it; None if ``target`` is out of reach."""
    start = (int(env.agent_pos[0]), int(env.agent_pos[1]))
    step = _path_next(env.grid, start, target)
    if step is None:
        return None
    if step == start:
        return _face(int(env.agent_dir), start, target, action)
    return _face(int(env.agent_dir), start, step, FORWARD)


def _open_way(env: Any) -> int | None:
    """Open the first closed door in reach, fetching its key first if it is locked."""
    carrying = env.carrying
    for door in _find(env.grid, "door"):
        obj = env.grid.get(*door)
        if obj.is_open:
            continue
        has_key = carrying is not None and carrying.type == "key" and carrying.color == obj.color
        if not obj.is_locked or has_key:
            action = _act(env, door, TOGGLE)
        else:
            keys = _find(env.grid, "key", obj.color)
            action = _act(env, keys[0], PICKUP) if keys and carrying is None else None
        if action is not None:
            return action
    return None


def go_to_goal(observation: Any, env: Any, rng: np.random.Generator | None = None) -> int:
    """MiniGrid's expert policy: the next action on a shortest path to the goal cell.

    When no path reaches the goal, it opens the first closed door it can reach, picking up the door's key first
    if the door is locked (``MiniGrid-DoorKey-*``). With nothing in reach it turns left. It reads the
    environment's grid, not the observation, and draws no randomness: it is deterministic given the state.

    Args:
        observation: Unused (the policy reads ``env.unwrapped``).
        env: A MiniGrid environment, possibly wrapped.
        rng: Unused.

    Example:
        >>> import gymnasium as gym, minigrid
        >>> env = gym.make("MiniGrid-Empty-5x5-v0", render_mode="rgb_array")
        >>> observation, _ = env.reset(seed=0)
        >>> plays = []
        >>> for _ in range(5):
        ...     action = go_to_goal(observation, env)
        ...     observation, reward, terminated, _, _ = env.step(action)
        ...     plays.append(action)
        >>> plays, terminated
        ([2, 2, 1, 2, 2], True)
    """
    world = env.unwrapped
    goals = _find(world.grid, "goal")
    for action in (_act(world, goals[0], FORWARD) if goals else None, _open_way(world)):
        if action is not None:
            return action
    return LEFT
