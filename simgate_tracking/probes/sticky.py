"""Sticky actions (Machado et al., 2018): a stochastic world made from a deterministic one, for probe takes."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

from simgate_tracking.probes._optional import import_optional


def _make_sticky(env_fn: Callable[[], Any], probability: float) -> Any:
    gym = import_optional("gymnasium")
    wrapper = getattr(gym.wrappers, "StickyAction", None)
    if wrapper is None:
        raise ModuleNotFoundError(
            f"Sticky actions need gymnasium.wrappers.StickyAction, which gymnasium {gym.__version__} lacks: "
            "pip install 'gymnasium>=1.0'"
        )
    return wrapper(env_fn(), repeat_action_probability=probability)


def sticky_actions(env_fn: Callable[[], Any], probability: float = 0.25) -> Callable[[], Any]:
    """A picklable factory of ``env_fn()``'s world where each step repeats the previous action with ``probability``.

    It wraps the environment in ``gymnasium.wrappers.StickyAction``, whose draws come from ``env.np_random``,
    that is ``env.unwrapped.np_random``: ``env.reset(seed=seed)`` seeds them, and the default reseeding of
    ``build_probe_set(..., takes=R)`` and ``EnvironmentReplay(..., take=r)`` draws them afresh per take. The first
    step after a reset is never sticky. The probe set records the actions asked for, not the ones repeated.

    Args:
        env_fn: Makes the deterministic environment, for example
            :func:`~simgate_tracking.probes.minigrid.minigrid_env_fn`'s factory; picklable for a picklable factory.
        probability: The chance that a step plays the previous action instead, in ``[0, 1)``.

    Raises:
        ValueError: If ``env_fn`` is not callable or ``probability`` is not a number in ``[0, 1)``.
        ModuleNotFoundError: Without gymnasium >= 1.0 (``pip install simgate-tracking[gym]``).

    Example:
        >>> import numpy as np
        >>> from simgate_tracking.probes.minigrid import minigrid_env_fn
        >>> env = sticky_actions(minigrid_env_fn("MiniGrid-Empty-8x8-v0"), probability=0.5)()
        >>> def directions(take_seed):  # turn right, left, right, left from the same reset
        ...     _ = env.reset(seed=0)
        ...     env.unwrapped.np_random = np.random.default_rng(take_seed)
        ...     return [(env.step(action), int(env.unwrapped.agent_dir))[1] for action in (1, 0, 1, 0)]
        >>> directions(1) == directions(1), directions(1) == directions(2)
        (True, False)
    """
    if not callable(env_fn):
        raise ValueError(f"Expected argument `env_fn` to be callable but got {env_fn!r}")
    ok = isinstance(probability, numbers.Real) and not isinstance(probability, bool)
    if not ok or not 0.0 <= float(probability) < 1.0:
        raise ValueError(f"Expected argument `probability` to be a number in [0, 1) but got {probability!r}")
    return functools.partial(_make_sticky, env_fn, float(probability))
