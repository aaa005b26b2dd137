"""Graded task judges for planning: how close does a future bring the agent to the goal, read from its frames?

A planner needs more than a success flag: most action sequences of a short horizon do not reach the goal, and a
flag ties them all. These judges score every frame by the distance from the agent to the goal region and average
over the future, so sooner and closer is better and reaching the goal scores 1. They read frames only, real or
imagined alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from simgate_tracking.probes.minigrid import dominant_colour


def as_float_frames(frames: Tensor) -> Tensor:
    """(B, T, 3, H, W) frames as float in [0, 1] (uint8 scaled); NaN becomes -1, a colour no judge matches.

    Raises:
        ValueError: If ``frames`` is not (B, T, 3, H, W).
    """
    if not isinstance(frames, Tensor) or frames.ndim != 5 or frames.shape[2] != 3:
        got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"Expected `frames` of shape (B, T, 3, H, W) but got {got}")
    return frames.float() / 255.0 if frames.dtype == torch.uint8 else torch.nan_to_num(frames.float(), nan=-1.0)


def _span(hits: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """(B, L) bool -> the first and last hit of each row (L and -1 in a row without one)."""
    positions = torch.arange(length, device=hits.device, dtype=torch.float32)
    first = torch.where(hits, positions, float(length)).amin(dim=1)
    last = torch.where(hits, positions, -1.0).amax(dim=1)
    return first, last


def goal_progress(agent: Tensor, goal: Tensor) -> Tensor:
    r"""Progress towards the goal: the mean over steps of :math:`1 - d_t / \mathrm{diag}`.

    :math:`d_t` is the distance from the centre of the agent's pixels at step t to the goal region (0 inside it),
    and diag the frame's diagonal. The goal region is the bounding box of goal pixels over all steps (the goal
    does not move, and the agent may cover part of it). A step without agent pixels, or an episode without goal
    pixels, scores 0.

    Args:
        agent: (B, T, H, W) bool, the agent's pixels.
        goal: (B, T, H, W) bool, the goal's pixels.

    Returns:
        (B,) float in [0, 1].

    Example:
        >>> agent, goal = torch.zeros(2, 1, 10, 10, dtype=torch.bool), torch.zeros(2, 1, 10, 10, dtype=torch.bool)
        >>> goal[:, :, 0:2, 0:2] = True
        >>> agent[0, :, 1, 1] = True  # on the goal
        >>> agent[1, :, 9, 1] = True  # 8 pixels below it
        >>> goal_progress(agent, goal)
        tensor([1.0000, 0.4343])
    """
    b, t, h, w = agent.shape
    region = goal.any(dim=1)  # (B, H, W)
    top, bottom = _span(region.any(dim=2), h)
    left, right = _span(region.any(dim=1), w)
    count = agent.sum(dim=(2, 3)).float()  # (B, T)
    rows = torch.arange(h, device=agent.device, dtype=torch.float32).view(1, 1, h, 1)
    cols = torch.arange(w, device=agent.device, dtype=torch.float32).view(1, 1, 1, w)
    cy = (agent * rows).sum(dim=(2, 3)) / count.clamp_min(1)
    cx = (agent * cols).sum(dim=(2, 3)) / count.clamp_min(1)
    dy = torch.maximum(top[:, None] - cy, cy - bottom[:, None]).clamp_min(0)
    dx = torch.maximum(left[:, None] - cx, cx - right[:, None]).clamp_min(0)
    closeness = (1 - torch.sqrt(dx.square() + dy.square()) / math.hypot(h, w)).clamp(0, 1)
    seen = (count > 0) & (bottom >= 0)[:, None]
    return torch.where(seen, closeness, torch.zeros_like(closeness)).mean(dim=1)


def minigrid_goal_progress(frames: Tensor) -> Tensor:
    """MiniGrid goal tasks: progress of the red agent towards the green goal cell (see :func:`goal_progress`).

    Reads colours as :func:`~simgate_tracking.probes.minigrid.reached_goal` does; assumes one goal and no other
    green or red object (true for ``Empty``, ``DoorKey`` and ``FourRooms``).

    Args:
        frames: (B, T, 3, H, W) float in [0, 1] or uint8.

    Raises:
        ValueError: If ``frames`` is not (B, T, 3, H, W).

    Example:
        >>> frames = torch.zeros(2, 1, 3, 9, 9)
        >>> frames[:, :, 1, 3:6, 3:6] = 1.0  # the green goal
        >>> frames[0, :, :, 4, 4] = torch.tensor([1.0, 0.0, 0.0])  # the agent on it
        >>> frames[1, :, 0, 4, 8] = 1.0  # the agent three pixels to its right
        >>> minigrid_goal_progress(frames)
        tensor([1.0000, 0.7643])
    """
    frames = as_float_frames(frames)
    steps = frames.flatten(0, 1)  # MiniGrid's colour test reads (N, 3, H, W)
    agent, goal = dominant_colour(steps, 0), dominant_colour(steps, 1)
    return goal_progress(agent.view(frames.shape[:2] + agent.shape[1:]), goal.view(frames.shape[:2] + goal.shape[1:]))
