"""Build a probe set from any Gymnasium environment that renders ``rgb_array`` frames."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from simgate_tracking.probe import ProbeSet
from simgate_tracking.probes.actions import ActionEncoder, action_encoder_for
from simgate_tracking.probes.episodes import (
    Branch,
    MaskExtractor,
    Policy,
    ScriptedActions,
    episode_rng,
    play_branch,
    reset_context,
)
from simgate_tracking.probes.frames import check_size
from simgate_tracking.probes.snapshot import CloneFn, RestoreFn, Snapshot

Outcome = Literal["success", "return"]
_OUTCOMES = ("success", "return")


@dataclass(frozen=True)
class _Plan:
    """The validated arguments every episode is played with."""

    policies: tuple[Policy, ...]
    num_counterfactual: int
    horizon: int
    context_frames: int
    size: tuple[int, int]
    counterfactual_policy: Policy | None
    mask_extractor: MaskExtractor | None
    clone_fn: CloneFn | None
    restore_fn: RestoreFn | None


@dataclass(frozen=True)
class _Episode:
    context: Tensor
    branches: list[Branch]
    group: int
    seed: int


def _positive_int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Expected argument `{name}` to be an int >= {minimum} but got {value!r}")
    return value


def _check_seeds(seeds: Any) -> list[int]:
    try:
        values = [] if isinstance(seeds, int | str | bytes) else list(seeds)
    except TypeError:
        values = []
    if not values:
        raise ValueError(f"Expected argument `seeds` to be a non-empty sequence of ints but got {seeds!r}")
    bad = [s for s in values if not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 0]
    if bad:
        raise ValueError(f"Expected argument `seeds` to hold non-negative ints (reset seeds) but got {bad[:3]!r}")
    return [int(s) for s in values]


def _check_policies(reference_policy: Any) -> tuple[Policy, ...]:
    policies = tuple(reference_policy) if isinstance(reference_policy, Sequence) else (reference_policy,)
    if not policies or not all(callable(p) for p in policies):
        raise ValueError(
            "Expected argument `reference_policy` to be a policy(observation, env, rng) -> action, or a non-empty "
            f"list of them (one group each), but got {reference_policy!r}"
        )
    return policies


def _check_callables(**optional: Any) -> None:
    for name, value in optional.items():
        if value is not None and not callable(value):
            raise ValueError(f"Expected argument `{name}` to be callable or None but got {value!r}")
    if (optional["clone_fn"] is None) != (optional["restore_fn"] is None):
        raise ValueError("Expected arguments `clone_fn` and `restore_fn` together (both or neither) but got one")


def _check_env(env: Any) -> None:
    mode = getattr(env, "render_mode", None)
    if mode != "rgb_array":
        raise ValueError(
            f'Expected env_fn() to return an environment with render_mode="rgb_array" but got render_mode={mode!r}: '
            'make it with gymnasium.make(..., render_mode="rgb_array")'
        )


def _random_actions(encoder: ActionEncoder, seed: int, stream: int, horizon: int, avoid_first: Tensor) -> Policy:
    """Seeded uniform random actions whose first action differs from the reference branch's first action."""
    rng = episode_rng(seed, stream)
    actions = [encoder.sample(rng) for _ in range(horizon)]
    for _ in range(1000):
        if not torch.equal(encoder.encode(actions[0]).to(avoid_first.dtype), avoid_first):
            return ScriptedActions(actions)
        actions[0] = encoder.sample(rng)
    raise ValueError(
        f"Expected an action space with at least two actions to draw counterfactual branches from but {encoder!r} "
        "only gives the reference action: pass `counterfactual_policy`"
    )


def _play(
    snapshot: Snapshot,
    policy: Policy,
    stream: int,
    observation: Any,
    plan: _Plan,
    encoder: ActionEncoder,
    extractor: MaskExtractor | None = None,
) -> Branch:
    rng = episode_rng(snapshot.seed, stream)
    return play_branch(snapshot.branch_env(), policy, rng, observation, plan.horizon, encoder, plan.size, extractor)


def _play_episodes(env: Any, seed: int, plan: _Plan, encoder: ActionEncoder) -> list[_Episode]:
    """Every group's episode from one reset: branch 0 follows the group's policy, branches 1..K the counterfactual."""
    context, observation = reset_context(env, seed, plan.context_frames, plan.policies[0], encoder, plan.size)
    snapshot = Snapshot(env, seed, context[-1], plan.clone_fn, plan.restore_fn)
    episodes = []
    for group, policy in enumerate(plan.policies):
        branches = [_play(snapshot, policy, 1, observation, plan, encoder, plan.mask_extractor)]
        for stream in range(2, plan.num_counterfactual + 2):
            other = plan.counterfactual_policy or _random_actions(
                encoder, seed, stream, plan.horizon, branches[0].actions[0]
            )
            branches.append(_play(snapshot, other, stream, observation, plan, encoder))
        episodes.append(_Episode(context, branches, group, seed))
    snapshot.check_untouched()
    return episodes


def _stack_objects(episodes: list[_Episode], size: tuple[int, int]) -> tuple[Tensor, Tensor] | tuple[None, None]:
    """(N, T, M, H, W) masks and (N, T, M) visibility; slots in first-seen order per episode, padded with False."""
    tracks = [e.branches[0].objects for e in episodes]
    slots = [list(dict.fromkeys(key for step in track for key in step)) for track in tracks]
    m = max(len(keys) for keys in slots)
    if m == 0:
        warnings.warn("mask_extractor(env) found no object in any episode: the probe set has no masks", stacklevel=3)
        return None, None
    masks = torch.zeros(len(episodes), len(tracks[0]), m, *size, dtype=torch.bool)
    for i, (track, keys) in enumerate(zip(tracks, slots, strict=True)):
        for t, step in enumerate(track):
            for j, key in enumerate(keys):
                if key in step:
                    masks[i, t, j] = step[key]
    return masks, masks.flatten(3).any(dim=3)


def _outcomes(episodes: list[_Episode], outcome: Outcome, per_branch: bool) -> Tensor:
    def value(branch: Branch) -> bool | float:
        return branch.success if outcome == "success" else branch.total_return

    dtype = torch.bool if outcome == "success" else torch.float32
    table = torch.tensor([[value(b) for b in e.branches] for e in episodes], dtype=dtype)
    return table if per_branch else table[:, 0]


def build_probe_set(
    env_fn: Callable[[], Any],
    seeds: Iterable[int],
    reference_policy: Policy | Sequence[Policy],
    num_counterfactual: int = 2,
    horizon: int = 8,
    context_frames: int = 1,
    size: tuple[int, int] = (64, 64),
    counterfactual_policy: Policy | None = None,
    action_encoder: ActionEncoder | None = None,
    mask_extractor: MaskExtractor | None = None,
    clone_fn: CloneFn | None = None,
    restore_fn: RestoreFn | None = None,
    outcome: Outcome = "success",
    name: str = "gymnasium",
) -> ProbeSet:
    """A probe set played in a real Gymnasium environment: reset with each seed, then branch K+1 action sequences.

    Per seed: ``env.reset(seed=seed)``; the context is the rendered reset frame plus, for ``context_frames > 1``,
    the frames after ``context_frames - 1`` warm-up steps of the (first) reference policy. From that state, saved
    with ``copy.deepcopy`` or ``clone_fn``/``restore_fn``, branch 0 plays the reference policy and branches 1..K
    the counterfactual policy (default: seeded uniform random actions whose first action differs from the
    reference's), ``horizon`` steps each. Frames are ``env.render()`` resized to ``size`` (antialiased bilinear)
    and stored as uint8. A branch whose episode terminates or is truncated before ``horizon`` steps keeps its last
    frame repeated, with zero actions, and its outcome is still the environment's.

    Outcomes: ``"success"``, True when the episode terminated with a positive reward within the branch;
    ``"return"``, the branch's summed reward. With one reference policy they are per branch, (N, K+1), and task
    validity asks whether a choice among the branches made on model futures is the one reality makes; with several
    reference policies every seed is played once per policy, the episode's group is the policy's index, outcomes
    are the reference branch's, (N,), and task validity asks whether the model ranks the policies as reality does.

    Args:
        env_fn: Makes the environment, with ``render_mode="rgb_array"``; called once per build.
        seeds: Non-negative reset seeds, one episode each (per policy); also the probe set's seeds.
        reference_policy: ``policy(observation, env, rng) -> action``, or a list of them to rank.
        num_counterfactual: K >= 1 counterfactual branches per episode.
        horizon: T >= 2 steps per branch.
        context_frames: T0 >= 1 context frames.
        size: ``(H, W)`` of the stored frames.
        counterfactual_policy: The policy of branches 1..K; default seeded random actions.
        action_encoder: Encodes actions for the world model; default from ``env.action_space`` (one-hot for
            ``Discrete``, flattened for ``Box``).
        mask_extractor: ``mask_extractor(env) -> {key: (h, w) bool mask}`` of visible objects, called after every
            step of the reference branch; gives masks (N, T, M, H, W) and visibility (N, T, M).
        clone_fn: ``clone_fn(env) -> state``, for environments ``copy.deepcopy`` cannot copy.
        restore_fn: ``restore_fn(env, state)``, given with ``clone_fn``.
        outcome: ``"success"`` or ``"return"``.
        name: The probe set's name.

    Raises:
        ValueError: On a bad argument (named), an environment without ``render_mode="rgb_array"``, or an episode
            that ends during warm-up.
        TypeError: If the environment cannot be deep-copied; the message names the fix (``clone_fn``/``restore_fn``).
        RuntimeError: If branches leak into the saved state (copies that share state, an incomplete restore).

    Example:
        >>> from simgate_tracking.probes.minigrid import go_to_goal, minigrid_actions, minigrid_env_fn
        >>> probe = build_probe_set(minigrid_env_fn("MiniGrid-Empty-5x5-v0"), seeds=[0, 1], reference_policy=go_to_goal,
        ...     horizon=6, size=(32, 32), action_encoder=minigrid_actions(3))
        >>> tuple(probe.targets.shape), probe.outcomes.tolist()
        ((2, 3, 6, 3, 32, 32), [[True, False, False], [True, False, False]])
    """
    plan = _Plan(
        policies=_check_policies(reference_policy),
        num_counterfactual=_positive_int(num_counterfactual, "num_counterfactual", 1),
        horizon=_positive_int(horizon, "horizon", 2),
        context_frames=_positive_int(context_frames, "context_frames", 1),
        size=check_size(size),
        counterfactual_policy=counterfactual_policy,
        mask_extractor=mask_extractor,
        clone_fn=clone_fn,
        restore_fn=restore_fn,
    )
    seed_list = _check_seeds(seeds)
    _check_callables(
        env_fn=env_fn,
        counterfactual_policy=counterfactual_policy,
        mask_extractor=mask_extractor,
        clone_fn=clone_fn,
        restore_fn=restore_fn,
    )
    if outcome not in _OUTCOMES:
        raise ValueError(f"Expected argument `outcome` to be one of {_OUTCOMES} but got {outcome!r}")
    env = env_fn()
    try:
        _check_env(env)
        encoder = action_encoder if action_encoder is not None else action_encoder_for(env.action_space)
        episodes = [episode for seed in seed_list for episode in _play_episodes(env, seed, plan, encoder)]
    finally:
        env.close()
    return _probe_set(episodes, plan, outcome, name)


def _probe_set(episodes: list[_Episode], plan: _Plan, outcome: Outcome, name: str) -> ProbeSet:
    masks, visible = _stack_objects(episodes, plan.size) if plan.mask_extractor is not None else (None, None)
    several = len(plan.policies) > 1
    return ProbeSet(
        context=torch.stack([e.context for e in episodes]),
        actions=torch.stack([torch.stack([b.actions for b in e.branches]) for e in episodes]),
        targets=torch.stack([torch.stack([b.frames for b in e.branches]) for e in episodes]),
        masks=masks,
        visible=visible,
        outcomes=_outcomes(episodes, outcome, per_branch=not several),
        groups=torch.tensor([e.group for e in episodes], dtype=torch.long) if several else None,
        seeds=torch.tensor([e.seed for e in episodes], dtype=torch.long),
        name=name,
    )
