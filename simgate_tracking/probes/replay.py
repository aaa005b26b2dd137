"""The real environment as its own world model: replays probe actions to check the pipeline end to end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

from simgate_tracking._utils import check_int
from simgate_tracking.probes.actions import ActionEncoder, action_encoder_for
from simgate_tracking.probes.episodes import Policy, ReseedFn, replay_take, reset_context


def _as_uint8(frames: Tensor) -> Tensor:
    return frames if frames.dtype == torch.uint8 else (frames.float() * 255).round().clamp(0, 255).to(torch.uint8)


class EnvironmentReplay:
    """A world model that is the environment itself: reset with the episode's seed, play the given actions.

    ``rollout(context, actions, generator)`` recovers each episode's seed with ``generator[i].initial_seed()``
    (the gate seeds one generator per episode with the probe set's seed), resets the environment with it,
    replays the warm-up steps of the reference policy, decodes and plays the actions, and renders and resizes
    exactly as :func:`~simgate_tracking.probes.build_probe_set` did. On a probe set built from the same
    ``env_fn``, encoder and reference policy it reproduces every real future, so :func:`simgate_tracking.evaluate`
    scores it 1 on every axis: a check that the probe set, the task judge and the scoring agree with the
    environment before any model is trained.

    In a stochastic world it replays one take: ``take=0`` (the default) plays the world's own randomness after the
    seeded reset, as a one-take probe set does; ``take=r >= 1`` reseeds before the actions exactly as
    ``build_probe_set(..., takes=R)`` did for take r (:func:`~simgate_tracking.probes.episodes.take_seed`, then
    ``env.unwrapped.np_random`` or ``reseed_fn``). For r < R it reproduces the probe set's take r of every branch;
    ``take=R`` is a real take no probe take used, the reference a model's score is compared with.

    Args:
        env_fn: Makes the environment, as given to ``build_probe_set``.
        action_encoder: The probe set's action encoding; default from ``env.action_space``.
        reference_policy: The probe set's reference policy (the first one of a list plays the warm-up); needed
            when the probe set has more than one context frame.
        take: The take to replay, an int >= 0.
        reseed_fn: The probe set's ``reseed_fn(env, take_seed)``, for worlds whose randomness is not
            ``env.unwrapped.np_random``.

    Raises:
        ValueError: If an argument is not callable, or ``take`` is not an int >= 0.

    Example:
        >>> from simgate_tracking.probes import build_probe_set
        >>> from simgate_tracking.probes.minigrid import go_to_goal, minigrid_actions, minigrid_env_fn
        >>> make_env, actions = minigrid_env_fn("MiniGrid-Empty-5x5-v0"), minigrid_actions(3)
        >>> probe = build_probe_set(make_env, [0, 1], go_to_goal, horizon=4, size=(16, 16), action_encoder=actions)
        >>> replay = EnvironmentReplay(make_env, action_encoder=actions)
        >>> generators = [torch.Generator().manual_seed(int(s)) for s in probe.seeds]
        >>> torch.equal(replay.rollout(probe.context, probe.actions[:, 0], generators), probe.targets[:, 0])
        True
    """

    def __init__(
        self,
        env_fn: Callable[[], Any],
        action_encoder: ActionEncoder | None = None,
        reference_policy: Policy | Sequence[Policy] | None = None,
        take: int = 0,
        reseed_fn: ReseedFn | None = None,
    ) -> None:
        if not callable(env_fn):
            raise ValueError(f"Expected argument `env_fn` to be callable but got {env_fn!r}")
        check_int(take, "take", 0)
        if reseed_fn is not None and not callable(reseed_fn):
            raise ValueError(f"Expected argument `reseed_fn` to be callable or None but got {reseed_fn!r}")
        policies = list(reference_policy) if isinstance(reference_policy, Sequence) else [reference_policy]
        if reference_policy is not None and not (policies and all(callable(p) for p in policies)):
            raise ValueError(
                "Expected argument `reference_policy` to be a policy or a list of policies but got "
                f"{reference_policy!r}"
            )
        self.env_fn, self.action_encoder = env_fn, action_encoder
        self.reference_policy: Policy | None = policies[0]
        self.take, self.reseed_fn = take, reseed_fn
        self._env: Any = None

    def _environment(self) -> tuple[Any, ActionEncoder]:
        if self._env is None:
            env = self.env_fn()
            self.action_encoder = self.action_encoder or action_encoder_for(env.action_space)
            self._env = env
        return self._env, cast(ActionEncoder, self.action_encoder)

    @staticmethod
    def _check(context: Tensor, actions: Tensor, generator: list[torch.Generator] | None) -> list[torch.Generator]:
        if not isinstance(context, Tensor) or context.ndim != 5 or context.shape[2] != 3:
            got = tuple(context.shape) if isinstance(context, Tensor) else type(context).__name__
            raise ValueError(f"Expected `context` of shape (B, T0, 3, H, W) but got {got}")
        b = context.shape[0]
        if not isinstance(actions, Tensor) or actions.ndim != 3 or actions.shape[0] != b:
            got = tuple(actions.shape) if isinstance(actions, Tensor) else type(actions).__name__
            raise ValueError(f"Expected `actions` of shape (B, T, A) with B = {b} but got {got}")
        if generator is None or len(generator) != b:
            given = "None" if generator is None else f"{len(generator)} generators"
            raise ValueError(
                f"Expected `generator`, one torch.Generator per episode seeded with its seed ({b}), but got {given}: "
                "the replay learns each episode's reset seed from it"
            )
        return list(generator)

    def rollout(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """Replay ``actions`` from each episode's reset: (B, T0, 3, H, W), (B, T, A) -> (B, T, 3, H, W) uint8.

        Raises:
            ValueError: On wrong shapes, a missing ``generator``, a context the environment does not reproduce
                (the probe set came from another environment, encoder, size or reference policy), or a
                ``reseed_fn`` that raises.
        """
        generators = self._check(context, actions, generator)
        env, encoder = self._environment()
        size = (int(context.shape[-2]), int(context.shape[-1]))
        futures = []
        for episode, (start, plays, rng) in enumerate(
            zip(_as_uint8(context).cpu(), actions.cpu(), generators, strict=True)
        ):
            seed = int(rng.initial_seed())
            real_start, observation = reset_context(env, seed, start.shape[0], self.reference_policy, encoder, size)
            if not torch.equal(real_start, start):
                raise ValueError(
                    f"Expected the context of episode {episode} to be the environment's reset with seed {seed} but "
                    "they differ: replay with the env_fn, action_encoder and reference_policy the probe set was "
                    "built with"
                )
            branch = replay_take(env, plays, seed, self.take, observation, encoder, size, self.reseed_fn)
            futures.append(branch.frames)
        return torch.stack(futures).to(context.device)

    def close(self) -> None:
        """Close the environment (a later rollout makes a new one)."""
        if self._env is not None:
            self._env.close()
            self._env = None
