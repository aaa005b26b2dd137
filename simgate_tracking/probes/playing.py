"""Playing the episodes of one seed: every group's K+1 branches from one reset, in every take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from simgate_tracking.probes.actions import ActionEncoder
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
from simgate_tracking.probes.snapshot import CloneFn, RestoreFn, Snapshot


@dataclass(frozen=True)
class Plan:
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
class Episode:
    """One episode of one group: its context and, per take, its K+1 branches (take 0 first)."""

    context: Tensor
    takes: list[list[Branch]]
    group: int
    seed: int

    @property
    def branches(self) -> list[Branch]:
        """Take 0's K+1 branches."""
        return self.takes[0]


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
    plan: Plan,
    encoder: ActionEncoder,
    extractor: MaskExtractor | None = None,
) -> Branch:
    rng = episode_rng(snapshot.seed, stream)
    env = snapshot.branch_env()
    return play_branch(env, policy, rng, observation, plan.horizon, encoder, plan.size, extractor, plan.success_fn)


def play_episodes(env: Any, seed: int, plan: Plan, encoder: ActionEncoder) -> list[Episode]:
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
        episodes.append(Episode(context, [branches], group, seed))
    snapshot.check_untouched()
    for take in range(1, plan.takes):
        _play_take(env, take, episodes, plan, encoder)
    return episodes


def _play_take(env: Any, take: int, episodes: list[Episode], plan: Plan, encoder: ActionEncoder) -> None:
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
