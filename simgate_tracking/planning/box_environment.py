"""Real environments with continuous actions a planner acts in: the interface, and any Gymnasium ``Box`` environment."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from simgate_tracking.planning.environments import EpisodeControl
from simgate_tracking.probes.actions import BoxActions, action_encoder_for
from simgate_tracking.probes.episodes import Policy, reset_context
from simgate_tracking.probes.frames import check_size, resize_frame
from simgate_tracking.probes.gymnasium import check_render_mode
from simgate_tracking.probes.snapshot import branching_method, detached_copy

SuccessFn = Callable[[Any], bool]
"""``success_fn(env) -> bool``: the task judged on the environment's state (e.g. ``object_in_goal``)."""

__all__ = ["BoxPlanningEnvironment", "GymBoxPlanningEnvironment"]


@runtime_checkable
class BoxPlanningEnvironment(EpisodeControl, Protocol):
    """A real environment with continuous actions for closed-loop planning.

    Frames are (C, H, W) float in [0, 1]. Actions are (A,) float vectors within ``[action_low, action_high]``; the
    world model sees them as they are (the probe set's ``BoxActions`` encoding).
    """

    @property
    def action_low(self) -> Tensor:
        """(A,) lower bounds of an action."""

    @property
    def action_high(self) -> Tensor:
        """(A,) upper bounds of an action."""

    def step(self, action: Any) -> Tensor:
        """Play one (A,) action; return the frame after it, (C, H, W)."""


def _time_limits(env: Any) -> list[Any]:
    """The wrappers of ``env`` that count elapsed steps (Gymnasium's ``TimeLimit``)."""
    found, layer = [], env
    while layer is not None:
        if hasattr(layer, "_elapsed_steps"):
            found.append(layer)
        layer = getattr(layer, "env", None)
    return found


class GymBoxPlanningEnvironment:
    """A Gymnasium environment with a ``Box`` action space as a planning environment, MuJoCo robots included.

    Episodes reset and render exactly as :func:`~simgate_tracking.probes.build_probe_set` plays them (same context,
    same resizing, actions as ``BoxActions`` encodes them), so ``EnvironmentReplay`` (the environment as a world
    model) can imagine for the planner. States are saved in place: a MuJoCo environment by its simulator state
    (a copy of ``MjData`` put back with ``mj_copyData``, its ``np_random`` and the step count of its time limit;
    ``copy.deepcopy`` of a MuJoCo env shares its simulator), any other by ``copy.deepcopy`` with the renderer
    detached. After the episode ends, a step shows the last frame again.

    Args:
        env_fn: Makes the environment, with ``render_mode="rgb_array"``; called once.
        size: ``(H, W)`` of the frames.
        context_frames: T0 >= 1: the reset frame plus T0 - 1 warm-up steps of ``reference_policy``.
        reference_policy: Plays the warm-up steps, as in the probe set.
        success_fn: ``success_fn(env) -> bool`` after every step (``object_in_goal`` for Pusher); default: the
            episode terminated with a positive reward, as the probe builder's ``"success"`` outcome.

    Raises:
        ValueError: On a bad argument, an environment without ``render_mode="rgb_array"`` or without a ``Box``
            action space.

    Example:
        >>> import gymnasium as gym
        >>> env = GymBoxPlanningEnvironment(lambda: gym.make("Pendulum-v1", render_mode="rgb_array"), (16, 16))
        >>> env.reset(seed=0).shape, env.action_low.tolist(), env.action_high.tolist()
        (torch.Size([1, 3, 16, 16]), [-2.0], [2.0])
        >>> saved = env.save()
        >>> first = env.step([2.0])
        >>> env.restore(saved)
        >>> bool(torch.equal(env.step([2.0]), first))
        True
    """

    def __init__(
        self,
        env_fn: Callable[[], Any],
        size: tuple[int, int] = (64, 64),
        context_frames: int = 1,
        reference_policy: Policy | None = None,
        success_fn: SuccessFn | None = None,
    ) -> None:
        if not callable(env_fn):
            raise ValueError(f"Expected argument `env_fn` to be callable but got {env_fn!r}")
        if isinstance(context_frames, bool) or not isinstance(context_frames, int) or context_frames < 1:
            raise ValueError(f"Expected argument `context_frames` to be an int >= 1 but got {context_frames!r}")
        if success_fn is not None and not callable(success_fn):
            raise ValueError(f"Expected argument `success_fn` to be callable or None but got {success_fn!r}")
        self.size = check_size(size)
        self.env = env_fn()
        check_render_mode(self.env)
        encoder = action_encoder_for(self.env.action_space)
        if not isinstance(encoder, BoxActions):
            raise ValueError(
                f"Expected an environment with a Box action space to plan over but got {self.env.action_space!r}"
            )
        self.encoder: BoxActions = encoder
        self.context_frames, self.reference_policy, self.success_fn = context_frames, reference_policy, success_fn
        self.in_place = branching_method(self.env) == "mujoco"
        self.done, self.success, self.frame = False, False, torch.zeros(0)

    @property
    def action_low(self) -> Tensor:
        """(A,) lower bounds of the action space, flattened."""
        return torch.from_numpy(self.encoder.low.reshape(-1).copy())

    @property
    def action_high(self) -> Tensor:
        """(A,) upper bounds of the action space, flattened."""
        return torch.from_numpy(self.encoder.high.reshape(-1).copy())

    def reset(self, seed: int) -> Tensor:
        """Reset with ``seed`` and play the warm-up; return the context frames (T0, 3, H, W)."""
        frames, _ = reset_context(
            self.env, int(seed), self.context_frames, self.reference_policy, self.encoder, self.size
        )
        self.done, self.success, self.frame = False, False, frames[-1].float() / 255.0
        return frames.float() / 255.0

    def step(self, action: Any) -> Tensor:
        """Play one action, a (A,) tensor, array or list; return the frame after it (the last one once ended)."""
        if not self.done:
            played = self.encoder.decode(torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(-1))
            _, reward, terminated, truncated, _ = self.env.step(played)
            if self.success_fn is not None:
                self.success = bool(self.success_fn(self.env))
            else:
                self.success = bool(terminated) and float(reward) > 0
            self.done = bool(terminated or truncated) or self.success
            self.frame = resize_frame(self.env.render(), self.size).float() / 255.0
        return self.frame

    def succeeded(self) -> bool:
        """Whether the episode has reached its goal."""
        return self.success

    def save(self) -> Any:
        """The environment's state and the episode's flags.

        Raises:
            TypeError: If the environment is not MuJoCo and cannot be deep-copied.
        """
        flags = (self.done, self.success, self.frame)
        if self.in_place:
            inner = self.env.unwrapped
            rng = inner.np_random.bit_generator.state
            steps = [limit._elapsed_steps for limit in _time_limits(self.env)]
            return copy.deepcopy(inner.data), copy.deepcopy(rng), steps, flags
        try:
            return detached_copy(self.env), flags
        except Exception as err:  # whatever the handle raises, the fix is the same
            raise TypeError(
                f"Cannot save the state of {type(self.env).__name__} for planning: copy.deepcopy(env) failed with "
                f"{type(err).__name__}: {err}. Make it without windows, clocks or simulator handles"
            ) from err

    def restore(self, state: Any) -> None:
        """Go back to a saved state (the saved state stays untouched, so it can be restored again)."""
        if self.in_place:
            import mujoco  # present: the environment holds an MjData

            data, rng, steps, flags = state
            inner = self.env.unwrapped
            mujoco.mj_copyData(inner.data, inner.model, data)
            inner.np_random.bit_generator.state = copy.deepcopy(rng)
            for limit, count in zip(_time_limits(self.env), steps, strict=True):
                limit._elapsed_steps = count
        else:
            env, flags = state
            self.env = detached_copy(env)
        self.done, self.success, self.frame = flags
