"""Branching several action sequences from one environment state: deepcopy, or the user's clone/restore pair."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from simgate_tracking.probes.frames import resize_frame

CloneFn = Callable[[Any], Any]
"""``clone_fn(env) -> state``: saves everything a later ``restore_fn`` needs to bring ``env`` back."""

RestoreFn = Callable[[Any, Any], None]
"""``restore_fn(env, state)``: puts ``env`` back into the state ``clone_fn`` saved."""

_FIX = (
    "pass clone_fn=(env -> state) and restore_fn=(env, state -> None) that save and restore its state, "
    'or make it without the uncopyable part (render_mode="rgb_array", not "human"; no viewer or recorder)'
)


class Snapshot:
    """The state of ``env`` after an episode's context, from which every branch of the episode starts.

    Without ``clone_fn`` each branch plays on ``copy.deepcopy(env)`` and ``env`` itself is never stepped; with
    ``clone_fn``/``restore_fn`` every branch plays on ``env`` after ``restore_fn`` brought the state back. Either
    way the rendered frame is checked against the last context frame, so a copy that shares state with the
    original, or a restore that misses part of the state, is caught instead of giving silently wrong futures.

    Args:
        env: The environment right after the context frames.
        seed: The episode's seed, for error messages.
        frame: The last context frame, (3, H, W) uint8.
        clone_fn: Saves the state, or None to deepcopy.
        restore_fn: Restores the state; given exactly when ``clone_fn`` is.
    """

    def __init__(
        self, env: Any, seed: int, frame: Tensor, clone_fn: CloneFn | None = None, restore_fn: RestoreFn | None = None
    ) -> None:
        self.env, self.seed, self.frame = env, seed, frame
        self.restore_fn = restore_fn
        self.state = None if clone_fn is None else clone_fn(env)

    def _shows_context(self, env: Any) -> bool:
        return torch.equal(resize_frame(env.render(), (self.frame.shape[1], self.frame.shape[2])), self.frame)

    def branch_env(self) -> Any:
        """An environment in the saved state, ready to play one branch.

        Raises:
            TypeError: If ``copy.deepcopy(env)`` fails; the message names the fix.
            RuntimeError: If the restored environment does not show the saved state.
        """
        if self.restore_fn is not None:
            self.restore_fn(self.env, self.state)
            if not self._shows_context(self.env):
                raise RuntimeError(
                    f"After restore_fn(env, state) the episode with seed {self.seed} does not render its last "
                    "context frame: clone_fn/restore_fn must save and restore the whole state"
                )
            return self.env
        try:
            return copy.deepcopy(self.env)
        except Exception as err:  # whatever the handle raises, the fix is the same
            raise TypeError(
                f"Cannot play several branches from the state of the episode with seed {self.seed}: "
                f"copy.deepcopy(env) failed with {type(err).__name__}: {err}. The environment holds something that "
                f"cannot be copied (a window, clock, socket, open file or simulator handle): {_FIX}"
            ) from err

    def check_untouched(self) -> None:
        """Raise if playing branches on copies changed the original environment (state the copy did not own).

        Raises:
            RuntimeError: If the original no longer renders the last context frame.
        """
        if self.restore_fn is None and not self._shows_context(self.env):
            raise RuntimeError(
                f"Playing a branch on copy.deepcopy(env) changed the original environment (episode seed {self.seed}): "
                f"its state lives outside the Python object, so copies share it: {_FIX}"
            )
