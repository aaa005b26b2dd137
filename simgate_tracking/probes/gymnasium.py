"""Build a probe set from any Gymnasium environment that renders ``rgb_array`` frames."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
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
    ReseedFn,
    ScriptedActions,
    SuccessFn,
    episode_rng,
    play_branch,
    replay_take,
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
    takes: int = 1
    reseed_fn: ReseedFn | None = None
    success_fn: SuccessFn | None = None


@dataclass(frozen=True)
class _Episode:
    """One episode of one group: its context and, per take, its K+1 branches (take 0 first)."""

    context: Tensor
    takes: list[list[Branch]]
    group: int
    seed: int

    @property
    def branches(self) -> list[Branch]:
        return self.takes[0]


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


def _check_drawn(episodes: list[_Episode]) -> None:
    """Refuse a probe set whose context and reference frames are all one colour: the environment drew nothing."""
    frames = [e.context for e in episodes] + [b.frames for e in episodes for b in e.branches]
    pixels = torch.cat(frames).permute(1, 0, 2, 3).flatten(1)
    if bool((pixels == pixels[:, :1]).all()):
        colour = tuple(int(c) for c in pixels[:, 0])
        raise ValueError(
            f"Expected env.render() to draw the world but every frame of every episode is one colour, "
            f"RGB {colour}: the renderer draws nothing headless (highway-env with SDL_VIDEODRIVER=dummy draws black "
            "frames: make it with config offscreen_rendering=True, or use simgate_tracking.probes.highway)"
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
    env = snapshot.branch_env()
    return play_branch(env, policy, rng, observation, plan.horizon, encoder, plan.size, extractor, plan.success_fn)


def _play_episodes(env: Any, seed: int, plan: _Plan, encoder: ActionEncoder) -> list[_Episode]:
    """Every group's episode from one reset: branch 0 follows the group's policy, branches 1..K the counterfactual.

    This is take 0; takes 1..R-1 replay its actions from the same reset with the world's randomness drawn afresh.
    """
    warm_up: list[Any] = []
    context, observation = reset_context(env, seed, plan.context_frames, plan.policies[0], encoder, plan.size, warm_up)
    snapshot = Snapshot(env, seed, context[-1], plan.clone_fn, plan.restore_fn, observation, warm_up)
    episodes = []
    for group, policy in enumerate(plan.policies):
        branches = [_play(snapshot, policy, 1, observation, plan, encoder, plan.mask_extractor)]
        for stream in range(2, plan.num_counterfactual + 2):
            other = plan.counterfactual_policy or _random_actions(
                encoder, seed, stream, plan.horizon, branches[0].actions[0]
            )
            branches.append(_play(snapshot, other, stream, observation, plan, encoder))
        episodes.append(_Episode(context, [branches], group, seed))
    snapshot.check_untouched()
    for take in range(1, plan.takes):
        _play_take(env, take, episodes, plan, encoder)
    return episodes


def _play_take(env: Any, take: int, episodes: list[_Episode], plan: _Plan, encoder: ActionEncoder) -> None:
    """Take ``take`` of every group's episode: the same reset, then every branch's take-0 actions, reseeded."""
    context, seed = episodes[0].context, episodes[0].seed
    warm_up: list[Any] = []
    again, observation = reset_context(env, seed, plan.context_frames, plan.policies[0], encoder, plan.size, warm_up)
    if not torch.equal(again, context):
        difference = int((again.int() - context.int()).abs().max())
        raise ValueError(
            f"Expected every take of the episode with seed {seed} to start from the same reset but take {take}'s "
            f"context frames differ from take 0's by up to {difference} (of 255): the reset does not follow its seed "
            "alone, or `reseed_fn` changed what the reset draws from; make env.reset(seed=seed) reproducible"
        )
    snapshot = Snapshot(env, seed, context[-1], plan.clone_fn, plan.restore_fn, observation, warm_up)
    for episode in episodes:
        episode.takes.append(
            [
                replay_take(
                    snapshot.branch_env(),
                    branch.actions,
                    seed,
                    take,
                    observation,
                    encoder,
                    plan.size,
                    plan.reseed_fn,
                    plan.mask_extractor if k == 0 else None,
                    plan.success_fn,
                )
                for k, branch in enumerate(episode.branches)
            ]
        )
    snapshot.check_untouched()


def _stack_takes(per_take: list[Tensor], field: str, seed: int) -> Tensor:
    """Stack one episode's per-take tensors, (R, ...), after checking that every take has take 0's shape."""
    for take, value in enumerate(per_take):
        if value.shape != per_take[0].shape:
            raise ValueError(
                f"Expected every take of the episode with seed {seed} to give `{field}` of take 0's shape "
                f"{tuple(per_take[0].shape)} but take {take} gave {tuple(value.shape)}"
            )
    return torch.stack(per_take)


def _fill_track(masks: Tensor, track: list[dict[Hashable, Tensor]], keys: list[Hashable]) -> None:
    """Write one take's (T, M, H, W) masks, object ``keys[j]`` in slot ``j``."""
    for t, step in enumerate(track):
        for j, key in enumerate(keys):
            if key in step:
                masks[t, j] = step[key]


def _stack_objects(episodes: list[_Episode], plan: _Plan) -> tuple[Tensor, Tensor] | tuple[None, None]:
    """(N, [R,] T, M, H, W) masks and (N, [R,] T, M) visibility of the reference branch, padded with False.

    Slots are the object keys in first-seen order per episode, over take 0 and then the later takes, so one object
    has one slot in every take.
    """
    tracks = [[branches[0].objects for branches in e.takes] for e in episodes]  # episode, take, step
    slots = [list(dict.fromkeys(key for track in takes for step in track for key in step)) for takes in tracks]
    m = max(len(keys) for keys in slots)
    if m == 0:
        warnings.warn("mask_extractor(env) found no object in any episode: the probe set has no masks", stacklevel=3)
        return None, None
    masks = torch.zeros(len(episodes), plan.takes, plan.horizon, m, *plan.size, dtype=torch.bool)
    for i, (takes, keys) in enumerate(zip(tracks, slots, strict=True)):
        for r, track in enumerate(takes):
            _fill_track(masks[i, r], track, keys)
    masks = masks if plan.takes > 1 else masks[:, 0]
    return masks, masks.flatten(-2).any(dim=-1)


def _outcomes(episodes: list[_Episode], outcome: Outcome, per_branch: bool) -> Tensor:
    """(N, [R,] K+1) outcomes per branch, or (N, [R]) of the reference branch; the takes dimension only for R > 1."""

    def value(branch: Branch) -> bool | float:
        return branch.success if outcome == "success" else branch.total_return

    dtype = torch.bool if outcome == "success" else torch.float32
    table = torch.tensor([[[value(b) for b in take] for take in e.takes] for e in episodes], dtype=dtype)
    table = table if table.shape[1] > 1 else table[:, 0]
    return table if per_branch else table[..., 0]


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
    takes: int = 1,
    reseed_fn: ReseedFn | None = None,
    success_fn: SuccessFn | None = None,
) -> ProbeSet:
    """A probe set played in a real Gymnasium environment: reset with each seed, then branch K+1 action sequences.

    Per seed: ``env.reset(seed=seed)``; the context is the rendered reset frame plus, for ``context_frames > 1``,
    the frames after ``context_frames - 1`` warm-up steps of the (first) reference policy. From that state, saved
    by the first method that fits the environment (ALE's ``cloneState``; MuJoCo's own state; ``copy.deepcopy``
    with the renderer detached; else ``reset(seed)`` with the warm-up actions replayed, checked against the
    context's frame and observation: see :mod:`simgate_tracking.probes.snapshot`) or by ``clone_fn``/``restore_fn``,
    branch 0 plays the reference policy and branches 1..K the counterfactual policy (default: seeded uniform
    random actions whose first action differs from the
    reference's), ``horizon`` steps each. Frames are ``env.render()`` resized to ``size`` (antialiased bilinear)
    and stored as uint8. A branch whose episode terminates or is truncated before ``horizon`` steps keeps its last
    frame repeated, with zero actions, and its outcome is still the environment's.

    Outcomes: ``"success"``, True when the episode terminated with a positive reward within the branch;
    with ``success_fn``, ``success_fn(env)`` after the branch's last step (a task judged on the state, as
    :func:`~simgate_tracking.probes.mujoco.object_in_goal`); ``"return"``, the branch's summed reward. With one
    reference policy they are per branch, (N, K+1), and task validity asks whether a choice among the branches
    made on model futures is the one reality makes; with several
    reference policies every seed is played once per policy, the episode's group is the policy's index, outcomes
    are the reference branch's, (N,), and task validity asks whether the model ranks the policies as reality does.

    Takes: in a stochastic world one real future is one sample. With ``takes=R > 1`` every episode is played R
    times from the same seeded reset with the same actions, the world's randomness drawn afresh per take. Take 0
    is played as above (it is the one-take probe set); its actions, of every branch, are then replayed in takes
    1..R-1, each from a fresh ``env.reset(seed=seed)`` and warm-up whose context must equal take 0's. Before every
    branch of take r the world is reseeded with :func:`~simgate_tracking.probes.episodes.take_seed` ``(seed, r)``,
    by default ``env.unwrapped.np_random = numpy.random.default_rng(take_seed)``, or ``reseed_fn(env, take_seed)``:
    the branches of a take share their randomness (common random numbers), so they differ by their actions alone.
    A branch that ended in take 0 plays its zero actions, decoded, where a take lives on. Targets are then
    (N, R, K+1, T, C, H, W), masks (N, R, T, M, H, W) with one slot per object in every take, visibility
    (N, R, T, M) and outcomes (N, R, K+1) or (N, R). ``EnvironmentReplay(..., take=r)`` replays take r exactly;
    ``take=R`` is a held-out real take.

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
        clone_fn: ``clone_fn(env) -> state``, for environments no built-in branching method can save.
        restore_fn: ``restore_fn(env, state)``, given with ``clone_fn``.
        outcome: ``"success"`` or ``"return"``.
        name: The probe set's name.
        takes: R >= 1 real takes per episode.
        reseed_fn: ``reseed_fn(env, take_seed)``, called before every branch of takes 1..R-1 instead of setting
            ``env.unwrapped.np_random``, for worlds whose randomness lives elsewhere (take 0 is never reseeded).
        success_fn: ``success_fn(env) -> bool``, the task's verdict on the state after a branch's last step, for
            ``outcome="success"`` in place of "terminated with a positive reward".

    Raises:
        ValueError: On a bad argument (named), an environment without ``render_mode="rgb_array"``, frames all of one
            colour (nothing drawn), an episode
            that ends during warm-up, a ``reseed_fn`` that raises, or takes of an episode whose resets differ.
        TypeError: If the environment can neither be deep-copied nor reset and replayed to the context; the message
            names the fix (``clone_fn``/``restore_fn``).
        RuntimeError: If branches leak into the saved state (copies that share state, an incomplete restore).

    Example:
        >>> from simgate_tracking.probes.minigrid import go_to_goal, minigrid_actions, minigrid_env_fn
        >>> probe = build_probe_set(minigrid_env_fn("MiniGrid-Empty-5x5-v0"), seeds=[0, 1], reference_policy=go_to_goal,
        ...     horizon=6, size=(32, 32), action_encoder=minigrid_actions(3))
        >>> tuple(probe.targets.shape), probe.outcomes.tolist()
        ((2, 3, 6, 3, 32, 32), [[True, False, False], [True, False, False]])
        >>> stochastic = build_probe_set(minigrid_env_fn("MiniGrid-Dynamic-Obstacles-5x5-v0"), seeds=[0, 1],
        ...     reference_policy=go_to_goal, horizon=4, size=(16, 16), takes=3)
        >>> tuple(stochastic.targets.shape), stochastic.num_takes
        ((2, 3, 3, 4, 3, 16, 16), 3)
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
        takes=_positive_int(takes, "takes", 1),
        reseed_fn=reseed_fn,
        success_fn=success_fn,
    )
    seed_list = _check_seeds(seeds)
    _check_callables(
        env_fn=env_fn,
        counterfactual_policy=counterfactual_policy,
        mask_extractor=mask_extractor,
        clone_fn=clone_fn,
        restore_fn=restore_fn,
        reseed_fn=reseed_fn,
        success_fn=success_fn,
    )
    if outcome not in _OUTCOMES:
        raise ValueError(f"Expected argument `outcome` to be one of {_OUTCOMES} but got {outcome!r}")
    env = env_fn()
    try:
        _check_env(env)
        encoder = action_encoder if action_encoder is not None else action_encoder_for(env.action_space)
        episodes = [episode for seed in seed_list for episode in _play_episodes(env, seed, plan, encoder)]
        _check_drawn(episodes)
    finally:
        env.close()
    return _probe_set(episodes, plan, outcome, name)


def _probe_set(episodes: list[_Episode], plan: _Plan, outcome: Outcome, name: str) -> ProbeSet:
    masks, visible = _stack_objects(episodes, plan) if plan.mask_extractor is not None else (None, None)
    several = len(plan.policies) > 1
    targets = torch.stack(
        [_stack_takes([torch.stack([b.frames for b in take]) for take in e.takes], "targets", e.seed) for e in episodes]
    )
    return ProbeSet(
        context=torch.stack([e.context for e in episodes]),
        actions=torch.stack([torch.stack([b.actions for b in e.branches]) for e in episodes]),
        targets=targets if plan.takes > 1 else targets[:, 0],
        masks=masks,
        visible=visible,
        outcomes=_outcomes(episodes, outcome, per_branch=not several),
        groups=torch.tensor([e.group for e in episodes], dtype=torch.long) if several else None,
        seeds=torch.tensor([e.seed for e in episodes], dtype=torch.long),
        name=name,
    )
