"""Planning on Pusher: a camera that shows the object and the goal, and a graded judge of the push, from frames."""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.planning.judges import as_float_frames, goal_progress

PUSHER_CAMERA = {"trackbodyid": -1, "distance": 1.8, "elevation": -60.0, "azimuth": 135.0, "lookat": [0.2, -0.3, 0.0]}
"""Pusher-v5's ``default_camera_config`` for planning: above the table, so the white object and the red goal are
several pixels wide at 48 x 48 (Pusher's own camera, 4 m away, shows each as a pixel or two)."""

__all__ = ["PUSHER_CAMERA", "pusher_goal_progress"]


def pusher_goal_progress(frames: Tensor) -> Tensor:
    """Pusher's task, graded: progress of the white object towards the red goal disc (see ``goal_progress``).

    The object is the pixels whose every channel is above 0.75 (Pusher draws nothing else that bright), the goal
    the pixels with red above 0.6 and green and blue below 0.35. With :data:`PUSHER_CAMERA` both are seen at
    48 x 48 frames; an object hidden by the arm at a step scores 0 there, so a plan that keeps it in sight and
    brings it closer scores higher.

    Args:
        frames: (B, T, 3, H, W) float in [0, 1] or uint8.

    Returns:
        (B,) float in [0, 1].

    Raises:
        ValueError: If ``frames`` is not (B, T, 3, H, W).

    Example:
        >>> frames = torch.full((2, 1, 3, 10, 10), 0.4)  # the grey table
        >>> frames[:, :, :, 0:2, 0:2] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # the red goal
        >>> frames[0, :, :, 1, 2] = 1.0  # the white object next to it
        >>> frames[1, :, :, 9, 9] = 1.0  # the white object in the far corner
        >>> pusher_goal_progress(frames)
        tensor([0.9293, 0.2000])
    """
    frames = as_float_frames(frames)
    red, green, blue = frames.unbind(dim=2)
    white = torch.minimum(torch.minimum(red, green), blue) > 0.75
    goal = (red > 0.6) & (green < 0.35) & (blue < 0.35)
    return goal_progress(white, goal)
