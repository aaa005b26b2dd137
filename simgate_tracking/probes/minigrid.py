"""MiniGrid built in: environments that render headless, its action encoding, object masks and a goal judge."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simgate_tracking._utils import check_int, check_positive_int
from simgate_tracking.probes._optional import import_optional
from simgate_tracking.probes.actions import DiscreteActions
from simgate_tracking.probes.minigrid_expert import go_to_goal

MINIGRID_ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
"""MiniGrid's discrete actions, in id order."""

__all__ = ["MINIGRID_ACTIONS", "go_to_goal", "minigrid_actions", "minigrid_env_fn", "minigrid_objects", "reached_goal"]


def _make(env_id: str, tile_size: int, highlight: bool) -> Any:
    gym = import_optional("gymnasium")
    import_optional("minigrid")  # registers the MiniGrid-* ids
    return gym.make(env_id, render_mode="rgb_array", tile_size=tile_size, highlight=highlight)


def minigrid_env_fn(env_id: str, tile_size: int = 8, highlight: bool = False) -> Callable[[], Any]:
    """A picklable factory of the MiniGrid environment ``env_id``, rendering the full grid as ``rgb_array`` frames.

    Args:
        env_id: A registered MiniGrid id, for example ``"MiniGrid-DoorKey-5x5-v0"``.
        tile_size: Pixels per grid cell of the rendered frame (small tiles render fast; frames are resized anyway).
        highlight: Shade the agent's field of view, as MiniGrid does by default; off so frames show the world only.

    Raises:
        ValueError: If ``env_id`` is not a registered MiniGrid environment, or ``tile_size`` is not a positive int.
        ModuleNotFoundError: Without gymnasium and minigrid (``pip install simgate-tracking[gym]``).

    Example:
        >>> env = minigrid_env_fn("MiniGrid-Empty-5x5-v0")()
        >>> _ = env.reset(seed=0)
        >>> env.render().shape
        (40, 40, 3)
    """
    gym = import_optional("gymnasium")
    import_optional("minigrid")
    if env_id not in gym.registry:
        known = [name for name in gym.registry if name.startswith("MiniGrid-")]
        close = difflib.get_close_matches(str(env_id), known, n=3)
        raise ValueError(f"Expected a registered MiniGrid environment id but got {env_id!r}; close matches: {close}")
    check_positive_int(tile_size, "tile_size")
    return functools.partial(_make, env_id, tile_size, bool(highlight))


def minigrid_actions(num_actions: int = 7) -> DiscreteActions:
    """One-hot encoding of MiniGrid's first ``num_actions`` actions (3: turn left, turn right, forward).

    Raises:
        ValueError: If ``num_actions`` is not in 1..7.

    Example:
        >>> minigrid_actions(3).encode(2)
        tensor([0., 0., 1.])
    """
    check_int(num_actions, "num_actions", 1, 7)
    return DiscreteActions(num_actions, names=MINIGRID_ACTIONS[:num_actions])


def _object_key(world: Any, obj: Any, cell: tuple[int, int]) -> Hashable:
    """Who ``obj`` is, the same in every copy of the world and every take of an episode (``id`` is neither)."""
    for index, obstacle in enumerate(getattr(world, "obstacles", None) or ()):
        if obstacle is obj:  # Dynamic-Obstacles re-places its balls every step, which overwrites their init_pos
            return ("obstacle", index)
    origin = getattr(obj, "init_pos", None)
    where = cell if origin is None else (int(origin[0]), int(origin[1]))
    return (str(obj.type), str(obj.color), where)


def minigrid_objects(env: Any) -> dict[Hashable, np.ndarray]:
    """Mask extractor for MiniGrid: the agent's cell, then every object's cell in grid scan order (walls excluded).

    Masks are (height, width) bool at grid resolution, one cell each, covering the full rendered grid;
    :func:`~simgate_tracking.probes.build_probe_set` resizes them to the frame size. An object is visible while
    it is on the grid: a picked-up key leaves the grid (MiniGrid does not draw carried objects) and comes back
    under the same key when dropped. Walls are left out: they are the scene every frame shows.

    Keys name objects the same way in every branch and every take of an episode: ``"agent"``; ``("obstacle", i)``
    for the i-th moving obstacle of Dynamic-Obstacles; otherwise ``(type, color, (x, y))`` with the cell the
    object was placed on when the world was generated (its current cell if the world did not record one).

    Raises:
        ValueError: If ``env`` is not a MiniGrid environment rendering the full grid (``agent_pov=False``).

    Example:
        >>> env = minigrid_env_fn("MiniGrid-DoorKey-5x5-v0")()
        >>> _ = env.reset(seed=0)
        >>> list(minigrid_objects(env))
        ['agent', ('door', 'yellow', (2, 1)), ('key', 'yellow', (1, 2)), ('goal', 'green', (3, 3))]
    """
    world = getattr(env, "unwrapped", env)
    grid = getattr(world, "grid", None)
    if grid is None or getattr(world, "agent_pos", None) is None:
        raise ValueError(f"Expected a MiniGrid environment after reset (with a grid and agent_pos) but got {env!r}")
    if getattr(world, "agent_pov", False):
        raise ValueError("Expected a MiniGrid environment rendering the full grid but got agent_pov=True")
    x, y = int(world.agent_pos[0]), int(world.agent_pos[1])
    agent = np.zeros((grid.height, grid.width), dtype=bool)
    agent[y, x] = True
    objects: dict[Hashable, np.ndarray] = {"agent": agent}
    for row in range(grid.height):
        for col in range(grid.width):
            obj = grid.get(col, row)
            if obj is not None and obj.type != "wall":
                mask = np.zeros_like(agent)
                mask[row, col] = True
                objects[_object_key(world, obj, (col, row))] = mask
    return objects


def dominant_colour(frames: Tensor, channel: int) -> Tensor:
    """Pixels where one colour channel is bright and at least twice each of the others."""
    own = frames[:, channel]
    others = [frames[:, c] for c in range(3) if c != channel]
    return (own > 0.4) & (own > 2 * others[0]) & (own > 2 * others[1])


def reached_goal(frames: Tensor) -> Tensor:
    """Task judge for MiniGrid goal tasks: is the agent on the goal cell in the last frame?

    The agent is MiniGrid's red triangle, the goal its green square: success when the centre of the red pixels
    lies inside the box of the green ones. Because an episode that reaches the goal ends there and its last
    frame repeats, this is the environment's own success flag, read from frames. It assumes one goal and no other
    green or red object (true for ``Empty``, ``DoorKey`` and ``FourRooms``).

    Args:
        frames: (B, T, 3, H, W) rollouts, float in [0, 1] or uint8.

    Returns:
        (B,) bool.

    Raises:
        ValueError: If ``frames`` is not (B, T, 3, H, W).

    Example:
        >>> frames = torch.zeros(2, 1, 3, 9, 9)
        >>> frames[:, :, 1, 3:6, 3:6] = 1.0  # the green goal
        >>> frames[0, :, :, 4, 4] = torch.tensor([1.0, 0.0, 0.0])  # the agent on it
        >>> frames[1, :, 0, 4, 7] = 1.0  # the agent next to it
        >>> reached_goal(frames)
        tensor([ True, False])
    """
    if not isinstance(frames, Tensor) or frames.ndim != 5 or frames.shape[2] != 3:
        got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"Expected `frames` of shape (B, T, 3, H, W) but got {got}")
    last = frames[:, -1].float() / 255.0 if frames.dtype == torch.uint8 else frames[:, -1].float()
    green, red = dominant_colour(last, 1), dominant_colour(last, 0)
    height, width = last.shape[-2:]
    rows = torch.arange(height, device=last.device, dtype=last.dtype)
    cols = torch.arange(width, device=last.device, dtype=last.dtype)
    green_rows, green_cols = green.any(dim=2), green.any(dim=1)
    top = torch.where(green_rows, rows, float(height)).amin(dim=1)
    bottom = torch.where(green_rows, rows, -1.0).amax(dim=1)
    left = torch.where(green_cols, cols, float(width)).amin(dim=1)
    right = torch.where(green_cols, cols, -1.0).amax(dim=1)
    count = red.sum(dim=(1, 2))
    cy = (red * rows[:, None]).sum(dim=(1, 2)) / count.clamp_min(1)
    cx = (red * cols[None, :]).sum(dim=(1, 2)) / count.clamp_min(1)
    return (count > 0) & (cy >= top) & (cy <= bottom) & (cx >= left) & (cx <= right)
