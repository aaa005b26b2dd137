"""Playing one probe episode in a real environment: reset and warm-up, then one branch of actions, in any take."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simgate_tracking.probes.actions import ActionEncoder
from simgate_tracking.probes.frames import resize_frame, resize_mask

Policy = Callable[[Any, Any, np.random.Generator], Any]
"""``policy(observation, env, rng) -> action``: the current observation, the environment (for scripted experts
that read its state) and a numpy generator seeded per episode and branch (for stochastic policies)."""

MaskExtractor = Callable[[Any], Mapping[Hashable, Any]]
"""``mask_extractor(env) -> {object key: (h, w) bool mask}`` for the objects the current frame shows. Keys identify
objects across steps (an object missing from the mapping is not visible); masks are at any resolution covering the
whole rendered frame and are resized to the probe set's size."""

SuccessFn = Callable[[Any], bool]
"""``success_fn(env) -> bool``: the task's verdict on the environment's state after a step (a branch's success is
its verdict after the branch's last step)."""

ReseedFn = Callable[[Any, int], None]
"""``reseed_fn(env, take_seed)``: draws the world's randomness afresh from ``take_seed`` (an int), for worlds whose
randomness does not live in ``env.unwrapped.np_random``."""

WARM_UP_STREAM = 0
"""The random stream of the warm-up steps; branch ``k`` of an episode draws from stream ``k + 1``."""

_TAKE_STRIDE = 2**64  # above every reset seed, so take seeds of takes >= 1 are never a reset seed


def take_seed(seed: int, take: int) -> int:
    """The seed of the world's randomness in take ``take`` of the episode reset with ``seed``: ``take * 2**64 + seed``.

    One-to-one in ``(seed, take)`` for seeds below ``2**64``: different takes of an episode, and takes of different
    episodes, never share a seed, and the seed of a take >= 1 is never a reset seed. Take 0 is the reset seed itself:
    ``env.reset(seed=seed)`` already seeded the world's randomness with it, so take 0 is played without reseeding and
    is the one-take probe set. Takes >= 1 are reseeded with ``numpy.random.default_rng(take_seed(seed, take))`` (or
    the user's ``reseed_fn``) before every branch; a take beyond the probe set's last is a real take whose randomness
    no probe take used.

    Args:
        seed: The episode's reset seed, an int in ``[0, 2**64)``.
        take: The take index, an int >= 0.

    Raises:
        ValueError: If ``seed`` or ``take`` is out of range or not an int.

    Example:
        >>> take_seed(7, 0), take_seed(7, 2) - 2 * 2**64
        (7, 7)
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or not 0 <= seed < _TAKE_STRIDE:
        raise ValueError(f"Expected argument `seed` to be an int in [0, 2**64) but got {seed!r}")
    if not isinstance(take, int | np.integer) or isinstance(take, bool) or take < 0:
        raise ValueError(f"Expected argument `take` to be an int >= 0 but got {take!r}")
    return int(take) * _TAKE_STRIDE + int(seed)


def reseed(env: Any, seed: int, take: int, reseed_fn: ReseedFn | None = None) -> None:
    """Draw the world's randomness afresh for take ``take`` of the episode with ``seed`` (take 0 is left as it is).

    By default ``env.unwrapped.np_random = numpy.random.default_rng(take_seed(seed, take))``; ``reseed_fn(env,
    take_seed(seed, take))`` replaces that for worlds whose randomness lives elsewhere.

    Raises:
        ValueError: If ``reseed_fn`` raises; the message names the episode seed and the take.

    Example:
        >>> class World:
        ...     np_random = None
        >>> world = World()
        >>> reseed(world, 7, 1)
        >>> int(world.np_random.integers(100)) == int(np.random.default_rng(take_seed(7, 1)).integers(100))
        True
    """
    if take == 0:
        return
    value = take_seed(seed, take)
    if reseed_fn is None:
        getattr(env, "unwrapped", env).np_random = np.random.default_rng(value)
        return
    try:
        reseed_fn(env, value)
    except Exception as err:  # whatever the user's world raises, the message says where
        raise ValueError(
            f"Expected `reseed_fn(env, take_seed)` to reseed take {take} of the episode with seed {seed} (take_seed "
            f"{value}) but it raised {type(err).__name__}: {err}"
        ) from err


def episode_rng(seed: int, stream: int) -> np.random.Generator:
    """The numpy generator a policy gets for one stream of one episode: a function of the seed and stream only.

    Example:
        >>> int(episode_rng(7, 1).integers(100)) == int(episode_rng(7, 1).integers(100))
        True
    """
    return np.random.default_rng([stream, seed])


@dataclass
class Branch:
    """One branch as it was played.

    Attributes:
        actions: (T, A) float32 encoded actions; zeros after the episode ended.
        frames: (T, 3, H, W) uint8 frames after every step; the last frame repeated after the episode ended.
        success: The episode terminated with a positive reward within the branch.
        total_return: The sum of the branch's rewards.
        objects: Per step, ``{key: (H, W) bool mask}`` of the visible objects (empty without a mask extractor).
    """

    actions: Tensor
    frames: Tensor
    success: bool = False
    total_return: float = 0.0
    objects: list[dict[Hashable, Tensor]] = field(default_factory=list)


def reset_context(
    env: Any,
    seed: int,
    context_frames: int,
    policy: Policy | None,
    encoder: ActionEncoder,
    size: tuple[int, int],
    played: list[Any] | None = None,
) -> tuple[Tensor, Any]:
    """Reset ``env`` with ``seed`` and return its (T0, 3, H, W) uint8 context frames and the last observation.

    The first context frame is the reset observation; each further one follows a warm-up step of ``policy``,
    played with the decoded encoding of its action, drawing from :data:`WARM_UP_STREAM`. The decoded actions are
    appended to ``played`` when it is given (a reset-and-replay branch plays them again).

    Raises:
        ValueError: If warm-up steps are asked for without a policy, or the episode ends during them.
    """
    observation, _ = env.reset(seed=seed)
    frames = [resize_frame(env.render(), size)]
    rng = episode_rng(seed, WARM_UP_STREAM)
    for step in range(context_frames - 1):
        if policy is None:
            raise ValueError(
                f"Expected a `reference_policy` to play the {context_frames - 1} warm-up steps of "
                f"{context_frames} context frames but got None"
            )
        action = encoder.decode(encoder.encode(policy(observation, env, rng)))
        if played is not None:
            played.append(action)
        observation, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            raise ValueError(
                f"The episode with seed {seed} ended at warm-up step {step + 1} of {context_frames - 1}: "
                "use fewer `context_frames`, or leave this seed out"
            )
        frames.append(resize_frame(env.render(), size))
    return torch.stack(frames), observation


def _masks(objects: Mapping[Hashable, Any], size: tuple[int, int]) -> dict[Hashable, Tensor]:
    if not isinstance(objects, Mapping):
        raise TypeError(
            f"Expected mask_extractor(env) to return a mapping {{object key: (h, w) bool mask}} but got "
            f"{type(objects).__name__}"
        )
    return {key: resize_mask(mask, size) for key, mask in objects.items()}


def play_branch(
    env: Any,
    policy: Policy,
    rng: np.random.Generator,
    observation: Any,
    horizon: int,
    encoder: ActionEncoder,
    size: tuple[int, int],
    mask_extractor: MaskExtractor | None = None,
    success_fn: SuccessFn | None = None,
) -> Branch:
    """Play ``horizon`` steps of ``policy`` in ``env`` from its current state and record the branch.

    The environment is stepped with ``encoder.decode(encoder.encode(action))``, so the stored actions replay
    exactly. Once the episode terminates or is truncated the policy is not asked again: the actions are zeros
    and the last frame (and its objects) repeats up to ``horizon``. The branch succeeds when the episode
    terminated with a positive reward, or, with ``success_fn``, when ``success_fn(env)`` holds after its last step.
    """
    actions: list[Tensor] = []
    frames: list[Tensor] = []
    branch = Branch(actions=torch.empty(0), frames=torch.empty(0))
    ended = False
    for _ in range(horizon):
        if ended:
            actions.append(torch.zeros(encoder.dim))
            frames.append(frames[-1])
            if mask_extractor is not None:
                branch.objects.append(branch.objects[-1])
            continue
        encoded = encoder.encode(policy(observation, env, rng)).to(torch.float32)
        observation, reward, terminated, truncated, _ = env.step(encoder.decode(encoded))
        branch.total_return += float(reward)
        branch.success = bool(success_fn(env)) if success_fn is not None else bool(terminated) and float(reward) > 0
        ended = bool(terminated or truncated)
        actions.append(encoded)
        frames.append(resize_frame(env.render(), size))
        if mask_extractor is not None:
            branch.objects.append(_masks(mask_extractor(env), size))
    branch.actions, branch.frames = torch.stack(actions), torch.stack(frames)
    return branch


def replay_take(
    env: Any,
    actions: Tensor,
    seed: int,
    take: int,
    observation: Any,
    encoder: ActionEncoder,
    size: tuple[int, int],
    reseed_fn: ReseedFn | None = None,
    mask_extractor: MaskExtractor | None = None,
    success_fn: SuccessFn | None = None,
) -> Branch:
    """Play the encoded ``actions`` (T, A) in take ``take`` from the current state of ``env``: reseed, then step.

    The probe builder plays takes >= 1 of every branch this way, and :class:`~simgate_tracking.probes.EnvironmentReplay`
    replays any take this way, so a replay of a probe take gives its frames bit for bit. Each action is played as
    ``encoder.decode``, including the zero actions of a branch that ended in take 0 while the take lives on.
    """
    reseed(env, seed, take, reseed_fn)
    script = ScriptedActions([encoder.decode(action) for action in actions])
    rng = episode_rng(seed, 1)
    return play_branch(env, script, rng, observation, int(actions.shape[0]), encoder, size, mask_extractor, success_fn)


class ScriptedActions:
    """A policy that plays a fixed list of actions, one per call, whatever it observes.

    Example:
        >>> policy = ScriptedActions([2, 0])
        >>> policy(None, None, None), policy(None, None, None)
        (2, 0)
    """

    def __init__(self, actions: list[Any]) -> None:
        self.actions = list(actions)
        self.step = 0

    def __call__(self, observation: Any, env: Any, rng: Any) -> Any:
        """The next action of the script (the last one again once it is used up)."""
        action = self.actions[min(self.step, len(self.actions) - 1)]
        self.step += 1
        return action
