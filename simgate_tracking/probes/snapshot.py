"""Branching several action sequences from one environment state, by the first method that fits the environment.

The methods, tried in this order (``clone_fn``/``restore_fn`` override them all):

1. ``"ale"``: ALE's ``cloneState``/``restoreState`` (Atari), with the env's ``np_random``.
2. ``"mujoco"``: MuJoCo's own state, a full copy of ``MjData`` (``qpos``, ``qvel``, ``act``, ``time``, warm start)
   put back with ``mj_copyData``, with the env's ``np_random``. ``copy.deepcopy`` of a Gymnasium MuJoCo env
   shares its simulator with the original, so it is never used there.
3. ``"deepcopy"``: ``copy.deepcopy(env)`` with the renderer detached (pygame screen and clock, viewers, MuJoCo
   renderers): the copy draws with a renderer of its own. The first copy must render the last context frame
   (a Box2D world copies without error into a broken world).
4. ``"reset-replay"``: when the environment cannot be copied, or its copy breaks, ``env.reset(seed=seed)`` and
   the warm-up actions played again, for environments whose seeded reset is deterministic (Gymnasium's
   contract). The replayed state must render the last context frame and give the context's observation.

Whatever the method, every branch starts from an environment that renders the last context frame, and the
original is checked after the branches, so copies that share state or an incomplete restore raise instead of
giving silently wrong futures.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simgate_tracking.probes.frames import resize_frame

CloneFn = Callable[[Any], Any]
"""``clone_fn(env) -> state``: saves everything a later ``restore_fn`` needs to bring ``env`` back."""

RestoreFn = Callable[[Any, Any], None]
"""``restore_fn(env, state)``: puts ``env`` back into the state ``clone_fn`` saved."""

RENDERER_ATTRIBUTES = ("screen", "clock", "window", "viewer", "mujoco_renderer", "renderer", "surf")
"""Attributes of ``env.unwrapped`` that hold a renderer; a deep copy gets None there and draws with its own."""

_FIX = (
    "pass clone_fn=(env -> state) and restore_fn=(env, state -> None) that save and restore its state, "
    'or make it without the uncopyable part (render_mode="rgb_array", not "human"; no viewer or recorder)'
)


def same_observation(first: Any, second: Any) -> bool:
    """Whether two observations are equal, element by element, through dicts, tuples and arrays.

    Example:
        >>> same_observation({"image": np.zeros(2), "dir": 1}, {"image": np.zeros(2), "dir": 1})
        True
    """
    if isinstance(first, Mapping):
        return (
            isinstance(second, Mapping)
            and first.keys() == second.keys()
            and all(same_observation(first[k], second[k]) for k in first)
        )
    if isinstance(first, tuple | list):
        return (
            isinstance(second, tuple | list)
            and len(first) == len(second)
            and all(same_observation(a, b) for a, b in zip(first, second, strict=True))
        )
    return bool(np.array_equal(np.asarray(first), np.asarray(second)))


def _rng_state(env: Any) -> Any:
    rng = getattr(env.unwrapped, "_np_random", None)
    return None if rng is None else copy.deepcopy(rng.bit_generator.state)


def _set_rng_state(env: Any, state: Any) -> None:
    if state is not None:
        env.unwrapped._np_random.bit_generator.state = copy.deepcopy(state)


def _ale_clone(env: Any) -> Any:
    return env.unwrapped.ale.cloneState(), _rng_state(env)


def _ale_restore(env: Any, state: Any) -> None:
    env.unwrapped.ale.restoreState(state[0])
    _set_rng_state(env, state[1])


def _mujoco_clone(env: Any) -> Any:
    return copy.deepcopy(env.unwrapped.data), _rng_state(env)


def _mujoco_restore(env: Any, state: Any) -> None:
    import mujoco  # present: the env holds an MjData

    mujoco.mj_copyData(env.unwrapped.data, env.unwrapped.model, state[0])
    _set_rng_state(env, state[1])


def _is_mujoco(env: Any) -> bool:
    data = getattr(getattr(env, "unwrapped", env), "data", None)
    return type(data).__name__ == "MjData" and type(data).__module__.startswith("mujoco")


def branching_method(env: Any, clone_fn: CloneFn | None = None) -> str:
    """The method the builder branches ``env`` with, before trying to copy it: see the module's docstring.

    Returns ``"user"``, ``"ale"``, ``"mujoco"`` or ``"deepcopy"``; a copy that fails turns into ``"reset-replay"``.

    Example:
        >>> class World:
        ...     pass
        >>> branching_method(World())
        'deepcopy'
    """
    if clone_fn is not None:
        return "user"
    if hasattr(getattr(env, "unwrapped", env), "ale"):
        return "ale"
    return "mujoco" if _is_mujoco(env) else "deepcopy"


def detached_copy(env: Any) -> Any:
    """``copy.deepcopy(env)`` whose renderer attributes (:data:`RENDERER_ATTRIBUTES`) are None in the copy.

    The original keeps its renderer; the copy makes its own on its first ``render()``.

    Example:
        >>> class World:
        ...     def __init__(self):
        ...         self.screen, self.state = object(), [1]
        >>> world = World()
        >>> twin = detached_copy(world)
        >>> twin.screen is None, twin.state == world.state, world.screen is not None
        (True, True, True)
    """
    inner = getattr(env, "unwrapped", env)
    memo: dict[int, Any] = {}
    for name in RENDERER_ATTRIBUTES:
        value = getattr(inner, name, None)
        if value is not None:
            memo[id(value)] = None
    return copy.deepcopy(env, memo)


class Snapshot:
    """The state of ``env`` after an episode's context, from which every branch of the episode starts.

    The method is chosen as the module's docstring says. With ``"deepcopy"`` each branch plays on a copy and
    ``env`` itself is never stepped; the other methods play every branch on ``env`` after bringing the state back.

    Args:
        env: The environment right after the context frames.
        seed: The episode's seed, for error messages and the reset-replay.
        frame: The last context frame, (3, H, W) uint8.
        clone_fn: Saves the state, or None to choose a method.
        restore_fn: Restores the state; given exactly when ``clone_fn`` is.
        observation: The observation after the context, checked by the reset-replay.
        warm_up: The decoded warm-up actions played after the reset, replayed by the reset-replay.
    """

    def __init__(
        self,
        env: Any,
        seed: int,
        frame: Tensor,
        clone_fn: CloneFn | None = None,
        restore_fn: RestoreFn | None = None,
        observation: Any = None,
        warm_up: Sequence[Any] = (),
    ) -> None:
        self.env, self.seed, self.frame = env, seed, frame
        self.observation, self.warm_up = observation, list(warm_up)
        self.method = branching_method(env, clone_fn)
        self.copy_error: Exception | None = None
        self.copy_checked = False
        savers: dict[str, tuple[CloneFn, RestoreFn]] = {
            "ale": (_ale_clone, _ale_restore),
            "mujoco": (_mujoco_clone, _mujoco_restore),
        }
        if clone_fn is not None and restore_fn is not None:
            savers["user"] = (clone_fn, restore_fn)
        pair = savers.get(self.method)
        clone = None if pair is None else pair[0]
        self.restore_fn: RestoreFn | None = None if pair is None else pair[1]
        self.state = None if clone is None else clone(env)

    def _shows_context(self, env: Any) -> bool:
        return torch.equal(resize_frame(env.render(), (self.frame.shape[1], self.frame.shape[2])), self.frame)

    def _restored(self, restore_fn: RestoreFn) -> Any:
        restore_fn(self.env, self.state)
        if not self._shows_context(self.env):
            who = "restore_fn(env, state)" if self.method == "user" else f"restoring its {self.method} state"
            raise RuntimeError(
                f"After {who} the episode with seed {self.seed} does not render its last context frame: "
                "clone_fn/restore_fn must save and restore the whole state"
            )
        return self.env

    def _replayed(self) -> Any:
        observation, _ = self.env.reset(seed=self.seed)
        for action in self.warm_up:
            observation, *_ = self.env.step(action)
        if self._shows_context(self.env) and (
            self.observation is None or same_observation(observation, self.observation)
        ):
            return self.env
        raise TypeError(
            f"Cannot play several branches from the state of the episode with seed {self.seed}: copy.deepcopy(env) "
            f"failed ({type(self.copy_error).__name__}: {self.copy_error}), and env.reset(seed={self.seed}) with the "
            "warm-up actions replayed does not give the context's frame and observation (the reset is not "
            f"deterministic). The environment holds something that cannot be copied: {_FIX}"
        )

    def branch_env(self) -> Any:
        """An environment in the saved state, ready to play one branch.

        Raises:
            TypeError: If the environment can neither be copied nor reset and replayed; the message names the fix.
            RuntimeError: If the restored environment does not show the saved state.
        """
        if self.restore_fn is not None:
            return self._restored(self.restore_fn)
        if self.method == "reset-replay":
            return self._replayed()
        try:
            twin = detached_copy(self.env)
            if not self.copy_checked and not self._shows_context(twin):
                raise RuntimeError("the copy does not render the last context frame")
            self.copy_checked = True
            return twin
        except Exception as err:  # whatever the copy breaks on (a handle, a C object), replay from the reset instead
            self.method, self.copy_error = "reset-replay", err
            return self._replayed()

    def check_untouched(self) -> None:
        """Raise if playing branches on copies changed the original environment (state the copy did not own).

        Raises:
            RuntimeError: If the original no longer renders the last context frame.
        """
        if self.method == "deepcopy" and not self._shows_context(self.env):
            raise RuntimeError(
                f"Playing a branch on copy.deepcopy(env) changed the original environment (episode seed {self.seed}): "
                f"its state lives outside the Python object, so copies share it: {_FIX}"
            )
