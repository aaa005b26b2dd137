"""The toy world's task judge: did the agent reach the goal? Judged on frames, real or generated alike."""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.toy.world import AGENT_COLOUR, BACKGROUND, GOAL_COLOUR, OBJECT_COLOURS, OCCLUDER_COLOUR

PALETTE = (BACKGROUND, GOAL_COLOUR, OCCLUDER_COLOUR, AGENT_COLOUR, *OBJECT_COLOURS)
_GOAL, _AGENT = 1, 3


def _nearest_colour(frames: Tensor) -> Tensor:
    """(..., C, H, W) -> (..., H, W): the index of each pixel's nearest palette colour, what a viewer would name it."""
    palette = torch.tensor(PALETTE, dtype=frames.dtype, device=frames.device)  # (P, C)
    # argmin_p |x - p|^2 = argmin_p |p|^2 - 2 x.p: one small matmul, not a (P, C, H, W) difference for every pixel
    return (palette.square().sum(dim=1) - 2 * frames.movedim(-3, -1) @ palette.T).argmin(dim=-1)


def _span(hits: Tensor) -> Tensor:
    """(B, L) bool -> (B, L) bool: everything between the first and the last hit of each row, inclusive."""
    after_first = hits.cummax(dim=1).values
    before_last = hits.flip(1).cummax(dim=1).values.flip(1)
    return after_first & before_last


def reached_goal(frames: Tensor) -> Tensor:
    """Whether the agent ends on the goal: agent-coloured pixels inside the goal region in the last frame.

    Each pixel takes the name of its nearest colour in the world's palette. The goal region is the bounding box of
    the pixels that show the goal in most frames (the goal never moves, and the agent is too small to hide a whole
    row or column of it). On real toy-world frames this is exactly the world's own outcome; on a model's frames it
    is the verdict the model's future implies.

    Args:
        frames: (B, T, 3, H, W) float in [0, 1] or uint8.

    Returns:
        (B,) bool.

    Raises:
        ValueError: If ``frames`` is not (B, T, 3, H, W).

    Example:
        >>> import torch
        >>> from simgate_tracking.toy import ToyWorld
        >>> world = ToyWorld()
        >>> print(world.reset(seed=0).agent, world.reset(seed=0).goal)  # the goal is below the agent
        (27, 15) (25, 25)
        >>> down, up = world.episode(0, [2] * 5).future, world.episode(0, [1] * 5).future
        >>> reached_goal(torch.from_numpy(down[None])), reached_goal(torch.from_numpy(up[None]))
        (tensor([True]), tensor([False]))
    """
    if not isinstance(frames, Tensor) or frames.ndim != 5 or frames.shape[2] != 3:
        got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"Expected `frames` of shape (B, T, 3, H, W) but got {got}")
    frames = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    # the goal never moves: pixels that are goal-coloured in most frames, not a passing blend of other colours
    goal = (_nearest_colour(frames) == _GOAL).float().mean(dim=1) > 0.5  # (B, H, W)
    region = _span(goal.any(dim=2)).unsqueeze(2) & _span(goal.any(dim=1)).unsqueeze(1)
    agent = _nearest_colour(frames[:, -1]) == _AGENT
    return (agent & region).flatten(1).any(dim=1)
