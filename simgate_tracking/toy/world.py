"""The toy world: an agent that actions move, coloured objects that pass behind an occluder, and a goal region."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from simgate_tracking.toy.state import (  # the layout and state live beside the world; importable from here as well
    ACTIONS,
    AGENT_COLOUR,
    AGENT_SIZE,
    AGENT_STEP,
    BACKGROUND,
    BLUE_COLUMNS,
    DISTRACTOR,
    DISTRACTOR_COLUMNS,
    DISTRACTOR_STEP,
    EXTRA_ROWS,
    GOAL_COLOUR,
    GOAL_CORNERS,
    GOAL_SIZE,
    MOVES,
    OBJECT_COLOURS,
    OBJECT_NAMES,
    OBJECT_SIZE,
    OCCLUDER_COLOUR,
    OCCLUDER_X,
    WORLD_SIZE,
    ToyEpisode,
    ToyState,
    glide,
    random_step,
    take_seed,
)

__all__ = [
    "ACTIONS",
    "AGENT_COLOUR",
    "AGENT_SIZE",
    "AGENT_STEP",
    "BACKGROUND",
    "DISTRACTOR",
    "DISTRACTOR_COLUMNS",
    "DISTRACTOR_STEP",
    "GOAL_COLOUR",
    "GOAL_SIZE",
    "OBJECT_COLOURS",
    "OBJECT_NAMES",
    "OBJECT_SIZE",
    "OCCLUDER_COLOUR",
    "OCCLUDER_X",
    "WORLD_SIZE",
    "ToyEpisode",
    "ToyState",
    "ToyWorld",
    "take_seed",
]


class ToyWorld:
    """A small action-conditioned world rendered as RGB frames, deterministic from a seed (or from a seed and a take).

    A yellow agent moves 2 cells per step under the actions ``stay, up, down, left, right`` (one-hot, ``A = 5``).
    A red object crosses the middle band horizontally and passes behind a grey occluder bar that is drawn on top of
    it; a blue object moves up and down beside the bar; optional magenta and cyan objects cross other bands. The
    green goal region sits in a corner; the task is to reach it. The agent is drawn on top of everything.

    With ``stochastic=True`` the blue object is a distractor that walks at random: each step it stays or moves
    2 cells up, down, left or right (each with probability 1/5), whatever the actions, reflected at the edges of the
    columns 7 to 24 (it never meets a goal corner, and it can hide behind the bar). Its steps during the context come
    from the reset's own randomness, the same in every take; from the first action on they come from the take's
    stream, :func:`take_seed` ``(seed, take)``. So takes of an episode share the reset, the context and the agent's
    motion, and differ only in where the distractor goes; the branches of one take share its walk.

    Dynamics run on a 32 x 32 grid; frames render it at ``size`` px, so masks stay exact at every size.

    Args:
        size: Frame side in pixels, 32 to 64.
        num_objects: Coloured objects with identities, 2 to 4.
        stochastic: Make the blue object a randomly walking distractor.
        take: Which take of every episode this world plays, an int >= 0; only a stochastic world has more than
            take 0.

    Raises:
        ValueError: If ``size`` or ``num_objects`` is out of range, ``stochastic`` is not a bool, or ``take`` is not
            an int >= 0 (or is not 0 in the deterministic world).

    Example:
        >>> world = ToyWorld(size=32)
        >>> episode = world.episode(seed=3, actions=[4, 4, 1, 0], context_frames=2)
        >>> episode.context.shape, episode.future.shape, episode.masks.shape
        ((2, 3, 32, 32), (4, 3, 32, 32), (4, 3, 32, 32))
        >>> bool(episode.visible[:, 0].all())  # the agent is always in view
        True
        >>> takes = [ToyWorld(stochastic=True, take=r).episode(seed=3, actions=[4, 4, 1, 0]) for r in (0, 1)]
        >>> bool((takes[0].context == takes[1].context).all()), bool((takes[0].future == takes[1].future).all())
        (True, False)
    """

    def __init__(self, size: int = 32, num_objects: int = 2, stochastic: bool = False, take: int = 0) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 64:
            raise ValueError(f"Expected argument `size` to be an int from 32 to 64 (pixels) but got {size!r}")
        if isinstance(num_objects, bool) or not isinstance(num_objects, int) or not 2 <= num_objects <= 4:
            raise ValueError(f"Expected argument `num_objects` to be an int from 2 to 4 but got {num_objects!r}")
        if not isinstance(stochastic, bool):
            raise ValueError(f"Expected argument `stochastic` to be a bool but got {stochastic!r}")
        if isinstance(take, bool) or not isinstance(take, int) or take < 0:
            raise ValueError(f"Expected argument `take` to be an int >= 0 but got {take!r}")
        if take and not stochastic:
            raise ValueError(
                f"Expected argument `take` to be 0 in the deterministic world (its takes are all one) but got {take}: "
                "pass stochastic=True for takes of their own"
            )
        self.size = size
        self.num_objects = num_objects
        self.stochastic = stochastic
        self.take = take

    @property
    def action_dim(self) -> int:
        """A: the length of a one-hot action."""
        return len(ACTIONS)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of a rendered frame."""
        return 3, self.size, self.size

    # --------------------------------------------------------------- dynamics
    def reset(self, seed: int) -> ToyState:
        """The initial state of the episode with this seed; a stochastic world's also carries the reset's noise."""
        rng = np.random.default_rng(int(seed))
        goal = GOAL_CORNERS[int(rng.integers(len(GOAL_CORNERS)))]
        high = WORLD_SIZE - OBJECT_SIZE
        objects = [
            (int(rng.integers(0, high + 1)), int(rng.integers(11, 18)), int(rng.choice([-2, 2])), 0),
            (int(rng.choice(BLUE_COLUMNS)), int(rng.integers(0, high + 1)), 0, int(rng.choice([-1, 1]))),
        ]
        objects += [(int(rng.integers(0, high + 1)), row, int(rng.choice([-1, 1])), 0) for row in EXTRA_ROWS]
        while True:  # rejection: the agent never starts on the goal, so every success is earned by the actions
            agent = (
                int(rng.integers(0, WORLD_SIZE - AGENT_SIZE + 1)),
                int(rng.integers(0, WORLD_SIZE - AGENT_SIZE + 1)),
            )
            if not self._agent_on_goal(agent, goal):
                break
        # drawn after everything else, so the stochastic world resets to the deterministic world's positions
        noise = int(rng.integers(2**32)) if self.stochastic else None
        return ToyState(agent=agent, objects=tuple(objects[: self.num_objects]), goal=goal, noise=noise)

    def begin_take(self, state: ToyState, seed: int) -> ToyState:
        """The state at the first action of this world's take of the episode with ``seed``.

        From here on the distractor's random steps come from the take's stream, :func:`take_seed` ``(seed,
        self.take)``; before, they came from the reset's, shared by every take. The deterministic world's state is
        returned as it is.
        """
        return replace(state, noise=take_seed(int(seed), self.take)) if self.stochastic else state

    def move_agent(self, agent: tuple[int, int], action: int) -> tuple[int, int]:
        """Where one action takes the agent; the walls stop it."""
        dx, dy = MOVES[int(action)]
        high = WORLD_SIZE - AGENT_SIZE
        return min(max(agent[0] + AGENT_STEP * dx, 0), high), min(max(agent[1] + AGENT_STEP * dy, 0), high)

    def step(self, state: ToyState, action: int) -> ToyState:
        """The next state: the agent moves by ``action`` (an index into :data:`ACTIONS`), objects bounce off walls.

        In a stochastic world the distractor instead takes a random step drawn from ``state.noise``.

        Raises:
            ValueError: If ``action`` is not an index into :data:`ACTIONS`, or a stochastic world is given a state
                without noise (one that did not come from its own :meth:`reset`).
        """
        if not 0 <= int(action) < len(ACTIONS):
            raise ValueError(f"Expected `action` to be an index into {ACTIONS} (0 to 4) but got {action!r}")
        objects = [glide(entity) for entity in state.objects]
        noise = state.noise
        if self.stochastic:
            if noise is None:
                raise ValueError(
                    "Expected `state` to carry the seed of the distractor's next step (`noise`), as the stochastic "
                    "world's own reset gives it, but got noise=None"
                )
            rng = np.random.default_rng(noise)
            objects[DISTRACTOR] = random_step(state.objects[DISTRACTOR], int(rng.integers(len(MOVES))))
            noise = int(rng.integers(2**32))
        return replace(state, agent=self.move_agent(state.agent, action), objects=tuple(objects), noise=noise)

    @staticmethod
    def _agent_on_goal(agent: tuple[int, int], goal: tuple[int, int]) -> bool:
        ax, ay = agent
        gx, gy = goal
        return ax < gx + GOAL_SIZE and gx < ax + AGENT_SIZE and ay < gy + GOAL_SIZE and gy < ay + AGENT_SIZE

    def reached_goal(self, state: ToyState) -> bool:
        """Whether the agent overlaps the goal region."""
        return self._agent_on_goal(state.agent, state.goal)

    # -------------------------------------------------------------- rendering
    def _pixels(self, start: int, length: int) -> slice:
        return slice(start * self.size // WORLD_SIZE, (start + length) * self.size // WORLD_SIZE)

    def render(self, state: ToyState) -> tuple[np.ndarray, np.ndarray]:
        """The frame (3, H, W) float32 in [0, 1] and the visible-part masks (1 + num_objects, H, W) bool.

        Mask slot 0 is the agent, slot ``1 + n`` object ``n``; a mask holds exactly the pixels that show the entity.
        """
        frame = np.empty((3, self.size, self.size), dtype=np.float32)
        frame[:] = np.asarray(BACKGROUND, dtype=np.float32)[:, None, None]
        owner = np.full((self.size, self.size), -1, dtype=np.int8)  # which mask slot shows at each pixel

        def paint(x: int, y: int, w: int, h: int, colour: tuple[float, ...], slot: int) -> None:
            rows, cols = self._pixels(y, h), self._pixels(x, w)
            frame[:, rows, cols] = np.asarray(colour, dtype=np.float32)[:, None, None]
            owner[rows, cols] = slot

        paint(*state.goal, GOAL_SIZE, GOAL_SIZE, GOAL_COLOUR, -2)
        for n, (x, y, _, _) in enumerate(state.objects):
            paint(x, y, OBJECT_SIZE, OBJECT_SIZE, OBJECT_COLOURS[n], 1 + n)
        paint(OCCLUDER_X[0], 0, OCCLUDER_X[1] - OCCLUDER_X[0], WORLD_SIZE, OCCLUDER_COLOUR, -3)
        paint(*state.agent, AGENT_SIZE, AGENT_SIZE, AGENT_COLOUR, 0)
        masks = owner[None] == np.arange(1 + len(state.objects), dtype=np.int8)[:, None, None]
        return frame, masks

    def episode(self, seed: int, actions: np.ndarray | list[int], context_frames: int = 2) -> ToyEpisode:
        """Reset from ``seed``, show ``context_frames`` frames with the agent still, then apply ``actions``.

        A stochastic world plays its take (:meth:`begin_take`) from the first action on.

        Args:
            seed: The episode's seed.
            actions: (T,) action indices into :data:`ACTIONS`.
            context_frames: T0 >= 1 frames before the first action.

        Raises:
            ValueError: If ``context_frames`` < 1 or ``actions`` is empty.
        """
        if isinstance(context_frames, bool) or not isinstance(context_frames, int) or context_frames < 1:
            raise ValueError(f"Expected argument `context_frames` to be an int >= 1 but got {context_frames!r}")
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if actions.size == 0:
            raise ValueError("Expected `actions` to hold at least one action but got none")
        state = self.reset(seed)
        context = []
        for t in range(context_frames):
            if t:
                state = self.step(state, 0)
            context.append(self.render(state)[0])
        state = self.begin_take(state, seed)
        frames, masks = [], []
        for action in actions:
            state = self.step(state, int(action))
            frame, mask = self.render(state)
            frames.append(frame)
            masks.append(mask)
        mask_array = np.stack(masks)
        return ToyEpisode(
            context=np.stack(context),
            future=np.stack(frames),
            masks=mask_array,
            visible=np.asarray(mask_array.reshape(*mask_array.shape[:2], -1).any(axis=-1)),
            outcome=self.reached_goal(state),
        )

    # ------------------------------------------------------ a perfect model
    def rollout(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """Reality as a world model: re-simulate each episode from its seed, ``generator[i].initial_seed()``.

        Scores 1 on every axis of a probe set made by :func:`~simgate_tracking.toy.make_probe_set`, whose episode
        seeds are the worlds' seeds: the ceiling every learned model is measured against. A stochastic world replays
        its take of every episode: ``ToyWorld(stochastic=True, take=r)`` is take ``r`` of a probe set of R takes
        exactly, and with ``r >= R`` a held-out real take.

        Args:
            context: (B, T0, 3, H, W) reset observations, used to check that the seeds match the episodes.
            actions: (B, T, 5) one-hot (or any scores: the largest entry wins).
            generator: One generator per episode, seeded with the episode's seed.

        Raises:
            ValueError: If ``generator`` is missing or of the wrong length, the shapes do not fit this world, or a
                seed does not reproduce its episode's context.
        """
        b, t0 = context.shape[:2]
        if generator is None or len(generator) != b:
            got = "None" if generator is None else f"{len(generator)} generators"
            raise ValueError(f"Expected `generator` to hold one seeded generator per episode ({b}) but got {got}")
        if actions.ndim != 3 or actions.shape[0] != b or actions.shape[2] != self.action_dim:
            raise ValueError(
                f"Expected `actions` of shape (B, T, A) = ({b}, T, {self.action_dim}) but got {tuple(actions.shape)}"
            )
        if tuple(context.shape[2:]) != self.frame_shape:
            raise ValueError(
                f"Expected `context` frames of shape {self.frame_shape} but got {tuple(context.shape[2:])}"
            )
        indices = actions.argmax(dim=-1).cpu().numpy()
        shown = context.detach().float().cpu().numpy() / (255.0 if context.dtype == torch.uint8 else 1.0)
        futures = []
        for i, gen in enumerate(generator):
            episode = self.episode(gen.initial_seed(), indices[i], context_frames=t0)
            if not np.allclose(episode.context, shown[i], atol=1e-2):
                raise ValueError(
                    f"Expected generator[{i}] to carry the seed of episode {i} but seed {gen.initial_seed()} "
                    "resets to another context: pass the probe set's own seeds"
                )
            futures.append(torch.from_numpy(episode.future))
        dtype = context.dtype if context.is_floating_point() else torch.float32
        return torch.stack(futures).to(device=context.device, dtype=dtype)
