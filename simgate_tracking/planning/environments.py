"""Real environments a planner acts in: the interface, and any Gymnasium environment (MiniGrid included)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from simgate_tracking.probes.actions import DiscreteActions, action_encoder_for
from simgate_tracking.probes.episodes import Policy, reset_context
from simgate_tracking.probes.frames import check_size, resize_frame
from simgate_tracking.probes.gymnasium import check_render_mode


@runtime_checkable
class EpisodeControl(Protocol):
    """What every planning environment does whatever its actions: reset from a seed, judge, save and restore."""

    def reset(self, seed: int) -> Tensor:
        """Start the episode with this seed; return its context frames, (T0, C, H, W)."""

    def succeeded(self) -> bool:
        """Whether the episode has reached its goal."""

    def save(self) -> Any:
        """The current state, for :meth:`restore` (any number of times)."""

    def restore(self, state: Any) -> None:
        """Go back to a state :meth:`save` returned."""


@runtime_checkable
class PlanningEnvironment(EpisodeControl, Protocol):
    """A real environment for closed-loop planning: reset from a seed, step, save and restore, judge success.

    Frames are (C, H, W) float in [0, 1], the frames the world model is fed and judged on. Actions are indices
    ``0 .. num_actions - 1``; the world model sees them one-hot.
    """

    @property
    def num_actions(self) -> int:
        """How many discrete actions."""

    def step(self, action: int) -> Tensor:
        """Play one action; return the frame after it, (C, H, W)."""


class GymPlanningEnvironment:
    """A Gymnasium environment with discrete actions as a planning environment, MiniGrid included.

    Episodes reset and render exactly as :func:`~simgate_tracking.probes.build_probe_set` plays them (same context,
    same resizing), so ``EnvironmentReplay`` (the environment as a world model) can imagine for the planner.
    Success is the builder's: the episode terminated with a positive reward. After the episode ends, a step shows
    the last frame again. States are saved with ``copy.deepcopy``.

    Args:
        env_fn: Makes the environment, with ``render_mode="rgb_array"``; called once.
        size: ``(H, W)`` of the frames.
        action_encoder: The discrete actions the planner chooses from; default from ``env.action_space``.
        context_frames: T0 >= 1: the reset frame plus T0 - 1 warm-up steps of ``reference_policy``.
        reference_policy: Plays the warm-up steps, as in the probe set.

    Raises:
        ValueError: On a bad argument, an environment without ``render_mode="rgb_array"`` or without discrete
            actions.

    Example:
        >>> from simgate_tracking.probes.minigrid import minigrid_actions, minigrid_env_fn
        >>> env = GymPlanningEnvironment(minigrid_env_fn("MiniGrid-Empty-5x5-v0"), (32, 32), minigrid_actions(3))
        >>> env.reset(seed=0).shape, env.num_actions
        (torch.Size([1, 3, 32, 32]), 3)
        >>> for action in (2, 2, 1, 2, 2):  # forward, forward, turn right, forward, forward
        ...     _ = env.step(action)
        >>> env.succeeded()
        True
    """

    def __init__(
        self,
        env_fn: Callable[[], Any],
        size: tuple[int, int] = (64, 64),
        action_encoder: DiscreteActions | None = None,
        context_frames: int = 1,
        reference_policy: Policy | None = None,
    ) -> None:
        if not callable(env_fn):
            raise ValueError(f"Expected argument `env_fn` to be callable but got {env_fn!r}")
        if action_encoder is not None and not isinstance(action_encoder, DiscreteActions):
            raise ValueError(f"Expected argument `action_encoder` to be DiscreteActions but got {action_encoder!r}")
        if isinstance(context_frames, bool) or not isinstance(context_frames, int) or context_frames < 1:
            raise ValueError(f"Expected argument `context_frames` to be an int >= 1 but got {context_frames!r}")
        self.size = check_size(size)
        self.env = env_fn()
        check_render_mode(self.env)
        encoder = action_encoder or action_encoder_for(self.env.action_space)
        if not isinstance(encoder, DiscreteActions):
            raise ValueError(f"Expected an environment with discrete actions to plan over but got {encoder!r}")
        self.encoder: DiscreteActions = encoder
        self.context_frames, self.reference_policy = context_frames, reference_policy
        self.done, self.success, self.frame = False, False, torch.zeros(0)

    @property
    def num_actions(self) -> int:
        """The encoder's number of actions."""
        return self.encoder.dim

    def reset(self, seed: int) -> Tensor:
        """Reset with ``seed`` and play the warm-up; return the context frames (T0, 3, H, W)."""
        frames, _ = reset_context(
            self.env, int(seed), self.context_frames, self.reference_policy, self.encoder, self.size
        )
        self.done, self.success, self.frame = False, False, frames[-1].float() / 255.0
        return frames.float() / 255.0

    def step(self, action: int) -> Tensor:
        """Play action index ``action``; return the frame after it (the last one again once the episode ended)."""
        if not self.done:
            _, reward, terminated, truncated, _ = self.env.step(self.encoder.decode(self.encoder.encode(action)))
            self.success = bool(terminated) and float(reward) > 0
            self.done = bool(terminated or truncated)
            self.frame = resize_frame(self.env.render(), self.size).float() / 255.0
        return self.frame

    def succeeded(self) -> bool:
        """Whether the episode terminated with a positive reward."""
        return self.success

    def save(self) -> Any:
        """A deep copy of the environment and the episode's flags.

        Raises:
            TypeError: If the environment cannot be deep-copied.
        """
        try:
            env = copy.deepcopy(self.env)
        except Exception as err:  # whatever the handle raises, the fix is the same
            raise TypeError(
                f"Cannot save the state of {type(self.env).__name__} for planning: copy.deepcopy(env) failed with "
                f"{type(err).__name__}: {err}. Make it without windows, clocks or simulator handles"
            ) from err
        return env, self.done, self.success, self.frame

    def restore(self, state: Any) -> None:
        """Go back to a saved state (the saved copy stays untouched, so it can be restored again)."""
        env, self.done, self.success, self.frame = state
        self.env = copy.deepcopy(env)
