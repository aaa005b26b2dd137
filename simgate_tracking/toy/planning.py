"""The toy world as a closed-loop planning task: its real environment and its graded goal judge."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simgate_tracking.planning.judges import as_float_frames, goal_progress
from simgate_tracking.toy.world import (
    AGENT_COLOUR,
    BACKGROUND,
    GOAL_COLOUR,
    OBJECT_COLOURS,
    OCCLUDER_COLOUR,
    ToyState,
    ToyWorld,
)

__all__ = ["ToyPlanningEnvironment", "toy_goal_progress"]

_TOY_PALETTE = (AGENT_COLOUR, GOAL_COLOUR, BACKGROUND, OCCLUDER_COLOUR, *OBJECT_COLOURS)
_TOY_AGENT, _TOY_GOAL = 0, 1


class ToyPlanningEnvironment:
    """The toy world as a planning environment; episodes start exactly as :meth:`ToyWorld.episode` starts them.

    The context is the reset frame plus ``context_frames - 1`` frames with the agent still, so a probe set's
    episode and a planning episode with the same seed start from the same frames, and ``ToyWorld.rollout`` (reality
    as a world model) can imagine for the planner.

    Args:
        world: The toy world; default ``ToyWorld()`` (32 px, 2 objects).
        context_frames: T0 >= 1 frames before the first action.

    Raises:
        ValueError: If ``context_frames`` is not an int >= 1.

    Example:
        >>> env = ToyPlanningEnvironment()
        >>> env.reset(seed=0).shape, env.num_actions  # the goal is below the agent
        (torch.Size([2, 3, 32, 32]), 5)
        >>> for _ in range(5):
        ...     _ = env.step(2)
        >>> env.succeeded()
        True
    """

    def __init__(self, world: ToyWorld | None = None, context_frames: int = 2) -> None:
        if isinstance(context_frames, bool) or not isinstance(context_frames, int) or context_frames < 1:
            raise ValueError(f"Expected argument `context_frames` to be an int >= 1 but got {context_frames!r}")
        self.world = ToyWorld() if world is None else world
        self.context_frames = context_frames
        self.state: ToyState | None = None

    @property
    def num_actions(self) -> int:
        """Five: stay, up, down, left, right."""
        return int(self.world.action_dim)

    @property
    def _state(self) -> ToyState:
        if self.state is None:
            raise RuntimeError("Expected reset(seed) before the first step of a planning episode")
        return self.state

    def _frame(self) -> Tensor:
        return torch.from_numpy(self.world.render(self._state)[0])

    def reset(self, seed: int) -> Tensor:
        """Reset from ``seed`` and show the context frames (T0, 3, H, W)."""
        self.state = self.world.reset(int(seed))
        frames = [self._frame()]
        for _ in range(self.context_frames - 1):
            frames.append(self.step(0))
        return torch.stack(frames)

    def step(self, action: int) -> Tensor:
        """Move the agent by ``action``; return the frame after it."""
        self.state = self.world.step(self._state, int(action))
        return self._frame()

    def succeeded(self) -> bool:
        """Whether the agent overlaps the goal."""
        return bool(self.world.reached_goal(self._state))

    def save(self) -> Any:
        """The state (immutable, so saving is free)."""
        return self.state

    def restore(self, state: Any) -> None:
        """Go back to ``state``."""
        self.state = state


def _toy_colour(frames: Tensor, index: int) -> Tensor:
    """(B, T, 3, H, W) -> (B, T, H, W) bool: pixels a viewer would call ``_TOY_PALETTE[index]``.

    A pixel within half the distance from that colour to the nearest other toy-world colour is nearest to it: as
    good as naming every pixel's nearest colour, and cheaper.
    """
    colour = torch.tensor(_TOY_PALETTE[index])
    others = torch.tensor([c for k, c in enumerate(_TOY_PALETTE) if k != index])
    radius = float((others - colour).square().sum(dim=1).amin()) / 4  # squared: (half the distance) ** 2
    return (frames - colour.to(frames).view(3, 1, 1)).square().sum(dim=-3) < radius


def toy_goal_progress(frames: Tensor) -> Tensor:
    """Toy world: progress of the yellow agent towards the green goal region (see :func:`goal_progress`).

    Args:
        frames: (B, T, 3, H, W) float in [0, 1] or uint8.

    Raises:
        ValueError: If ``frames`` is not (B, T, 3, H, W).

    Example:
        >>> from simgate_tracking.toy import ToyWorld
        >>> world = ToyWorld()  # seed 0: the goal is below the agent
        >>> down, up = world.episode(0, [2] * 5).future, world.episode(0, [1] * 5).future
        >>> toy_goal_progress(torch.from_numpy(down[None])) > toy_goal_progress(torch.from_numpy(up[None]))
        tensor([True])
    """
    frames = as_float_frames(frames)
    return goal_progress(_toy_colour(frames, _TOY_AGENT), _toy_colour(frames, _TOY_GOAL))
