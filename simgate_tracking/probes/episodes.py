"""Playing one probe episode in a real environment: reset and warm-up, then one branch of actions."""

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

WARM_UP_STREAM = 0
"""The random stream of the warm-up steps; branch ``k`` of an episode draws from stream ``k + 1``."""


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
) -> tuple[Tensor, Any]:
    """Reset ``env`` with ``seed`` and return its (T0, 3, H, W) uint8 context frames and the last observation.

    The first context frame is the reset observation; each further one follows a warm-up step of ``policy``,
    played with the decoded encoding of its action, drawing from :data:`WARM_UP_STREAM`.

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
        observation, _, terminated, truncated, _ = env.step(
            encoder.decode(encoder.encode(policy(observation, env, rng)))
        )
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
) -> Branch:
    """Play ``horizon`` steps of ``policy`` in ``env`` from its current state and record the branch.

    The environment is stepped with ``encoder.decode(encoder.encode(action))``, so the stored actions replay
    exactly. Once the episode terminates or is truncated the policy is not asked again: the actions are zeros
    and the last frame (and its objects) repeats up to ``horizon``.
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
        branch.success = bool(terminated) and float(reward) > 0
        ended = bool(terminated or truncated)
        actions.append(encoded)
        frames.append(resize_frame(env.render(), size))
        if mask_extractor is not None:
            branch.objects.append(_masks(mask_extractor(env), size))
    branch.actions, branch.frames = torch.stack(actions), torch.stack(frames)
    return branch


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
