"""The toy world's state and rules: its layout, colours, state, rendered episode and the objects' motion."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WORLD_SIZE = 32  # the logical side length: dynamics run on this grid, frames render it at 32 to 64 px
ACTIONS: tuple[str, ...] = ("stay", "up", "down", "left", "right")
MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))
AGENT_SIZE, OBJECT_SIZE, GOAL_SIZE, AGENT_STEP = 3, 4, 6, 2
OCCLUDER_X = (14, 20)  # a full-height bar: wider than an object, so an object can hide completely behind it
BACKGROUND = (0.08, 0.08, 0.12)
GOAL_COLOUR = (0.15, 0.65, 0.25)
OCCLUDER_COLOUR = (0.55, 0.55, 0.55)
AGENT_COLOUR = (1.0, 0.9, 0.1)
OBJECT_COLOURS = ((0.9, 0.2, 0.2), (0.2, 0.45, 1.0), (0.85, 0.3, 0.9), (0.2, 0.85, 0.85))
OBJECT_NAMES: tuple[str, ...] = ("red", "blue", "magenta", "cyan")
# goal corners and object lanes never meet, so the goal stays visible and the task judge can find it
GOAL_CORNERS = ((1, 1), (25, 1), (1, 25), (25, 25))
BLUE_COLUMNS = (7, 8, 9, 10, 20, 21)
EXTRA_ROWS = (21, 7)
# the stochastic world's distractor: the blue object walks at random, between the goal corners and through the bar
DISTRACTOR, DISTRACTOR_STEP, DISTRACTOR_COLUMNS = 1, 2, (7, 21)


def take_seed(seed: int, take: int) -> int:
    """The seed of take ``take`` of the episode whose reset seed is ``seed``: numpy's child stream ``take`` of it.

    The rule is ``np.random.SeedSequence(seed).spawn(take + 1)[take]`` (that is ``SeedSequence(seed,
    spawn_key=(take,))``), read as one 32-bit word. Children of a seed are independent streams and none is the
    stream the reset itself draws from, so every take index brings randomness of its own: with a probe set of R
    takes, takes ``r >= R`` are held-out takes that no probe take used.

    Args:
        seed: The episode's reset seed, an int >= 0 (``probe.seeds[i]``).
        take: The take index, an int >= 0.

    Raises:
        ValueError: If ``seed`` or ``take`` is not an int >= 0.

    Example:
        >>> take_seed(7, 2) == int(np.random.SeedSequence(7).spawn(3)[2].generate_state(1)[0])
        True
        >>> len({take_seed(7, r) for r in range(100)})  # a hundred takes, a hundred streams
        100
    """
    for name, value in (("seed", seed), ("take", take)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"Expected argument `{name}` to be an int >= 0 but got {value!r}")
    child = np.random.SeedSequence(int(seed), spawn_key=(int(take),))
    return int(child.generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class ToyState:
    """The full state of the toy world, in logical (32 x 32) coordinates.

    Attributes:
        agent: Top-left (x, y) of the agent.
        objects: (x, y, vx, vy) of every object, in identity order.
        goal: Top-left (x, y) of the goal region.
        noise: In a stochastic world, the seed of the distractor's next random step (each step draws the next);
            ``None`` in the deterministic world. Not shown in the repr.

    Example:
        >>> from simgate_tracking.toy import ToyWorld
        >>> ToyWorld().reset(seed=0)
        ToyState(agent=(27, 15), objects=((18, 14, -2, 0), (8, 1, 0, -1)), goal=(25, 25))
    """

    agent: tuple[int, int]
    objects: tuple[tuple[int, int, int, int], ...]
    goal: tuple[int, int]
    noise: int | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ToyEpisode:
    """One rendered episode: numpy arrays, frames float32 in [0, 1].

    Attributes:
        context: (T0, 3, H, W) frames before the first action; the agent stays, the objects move.
        future: (T, 3, H, W) frames after each action.
        masks: (T, 1 + num_objects, H, W) bool, the visible pixels of the agent (slot 0) and of each object.
        visible: (T, 1 + num_objects) bool, whether any pixel of the entity shows.
        outcome: Whether the agent overlaps the goal region in the last frame.

    Example:
        >>> from simgate_tracking.toy import ToyWorld
        >>> episode = ToyWorld().episode(seed=0, actions=[2, 2, 2, 2, 2])  # down, onto the goal below
        >>> episode.future.shape, episode.visible.shape, episode.outcome
        ((5, 3, 32, 32), (5, 3), True)
    """

    context: np.ndarray
    future: np.ndarray
    masks: np.ndarray
    visible: np.ndarray
    outcome: bool


def bounce(position: int, velocity: int, high: int, low: int = 0) -> tuple[int, int]:
    """``position`` moved by ``velocity`` within ``[low, high]``, reflected at the edges, and the new velocity."""
    moved = position + velocity
    if moved < low:
        return 2 * low - moved, -velocity
    if moved > high:
        return 2 * high - moved, -velocity
    return moved, velocity


def glide(entity: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """One step of an object at its own velocity, bouncing off the walls."""
    x, y, vx, vy = entity
    high = WORLD_SIZE - OBJECT_SIZE
    x, vx = bounce(x, vx, high)
    y, vy = bounce(y, vy, high)
    return x, y, vx, vy


def random_step(entity: tuple[int, int, int, int], move: int) -> tuple[int, int, int, int]:
    """The distractor's step: ``move`` (an index into the agent's moves) of 2 cells, reflected at its band's edges."""
    dx, dy = MOVES[move]
    x, vx = bounce(entity[0], DISTRACTOR_STEP * dx, DISTRACTOR_COLUMNS[1], DISTRACTOR_COLUMNS[0])
    y, vy = bounce(entity[1], DISTRACTOR_STEP * dy, WORLD_SIZE - OBJECT_SIZE)
    return x, y, vx, vy
