"""Probe sets of the toy world: fixed resets, reference and counterfactual branches, masks, outcomes and seeds."""

from __future__ import annotations

import numpy as np
import torch

from simgate_tracking.probe import ProbeSet
from simgate_tracking.toy.policies import POLICIES, policy_actions
from simgate_tracking.toy.world import ACTIONS, ToyEpisode, ToyWorld

PROBE_STREAM, TRAIN_STREAM, VAL_STREAM = 0, 1, 2  # resets of each use never overlap: probes are held out
_MAX_DRAWS = 1000


def episode_seed(seed: int, index: int, stream: int) -> int:
    """The reset seed of episode ``index`` of a stream (probe, training or validation) drawn from ``seed``.

    Example:
        >>> episode_seed(0, 0, PROBE_STREAM) == episode_seed(0, 0, TRAIN_STREAM)
        False
    """
    return int(np.random.SeedSequence([int(seed), int(stream), int(index)]).generate_state(1, np.uint32)[0])


def _branches(
    world: ToyWorld, seed: int, reference: int, num_branches: int, horizon: int, context_frames: int
) -> tuple[list[np.ndarray], list[ToyEpisode]]:
    """The reference policy's actions, then counterfactual ones from the other policies that change the future."""
    state = world.reset(seed)
    for _ in range(context_frames - 1):
        state = world.step(state, 0)
    rng = np.random.default_rng([seed, 1])
    actions = [policy_actions(world, state, POLICIES[reference], horizon, rng)]
    episodes = [world.episode(seed, actions[0], context_frames)]
    for k in range(1, _MAX_DRAWS):
        if len(actions) == num_branches:
            break
        candidate = policy_actions(world, state, POLICIES[(reference + k) % len(POLICIES)], horizon, rng)
        episode = world.episode(seed, candidate, context_frames)
        # same reset, other actions: a branch whose future equals the reference's would measure nothing
        if not np.array_equal(episode.future, episodes[0].future):
            actions.append(candidate)
            episodes.append(episode)
    if len(actions) < num_branches:
        raise RuntimeError(f"Could not draw {num_branches} distinct branches for the episode with seed {seed}")
    return actions, episodes


def _check_arguments(num_episodes: int, num_branches: int, horizon: int, takes: int, stochastic: bool) -> None:
    for name, value, low in (
        ("num_episodes", num_episodes, 1),
        ("num_branches", num_branches, 2),
        ("horizon", horizon, 2),
        ("takes", takes, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
    if not isinstance(stochastic, bool):
        raise ValueError(f"Expected argument `stochastic` to be a bool but got {stochastic!r}")
    if takes > 1 and not stochastic:
        raise ValueError(
            f"Expected argument `takes` to be 1 for the deterministic world (its takes are all one) but got {takes}: "
            "pass stochastic=True for takes of their own"
        )


def make_probe_set(
    num_episodes: int = 16,
    num_branches: int = 3,
    horizon: int = 10,
    context_frames: int = 2,
    size: int = 32,
    seed: int = 0,
    num_objects: int = 2,
    policy_groups: bool = False,
    takes: int = 1,
    stochastic: bool = False,
) -> ProbeSet:
    """A probe set of the toy world, deterministic from ``seed``.

    Each episode resets the world from its own seed (``probe.seeds``, so a model can re-draw per-episode noise),
    shows ``context_frames`` frames, then branches: branch 0 follows a reference policy (``seek`` the goal on even
    episodes, ``wander`` on odd ones), the other ``num_branches - 1`` follow other policies from the same reset and
    change the future. Masks and visibility cover the agent (slot 0) and every object on the reference branch; an
    object fully behind the occluder is not visible. Outcomes say whether each branch ends on the goal, shape
    (N, K+1); with ``policy_groups`` they are the reference branch's only, (N,), and ``groups`` holds its policy id
    (episode ``i`` follows policy ``i % 3``: seek, wander, flee), for task validity in ranking mode.

    With ``stochastic`` the world's blue object is a randomly walking distractor (see :class:`ToyWorld`), and every
    branch is played ``takes`` times: take ``r`` of the episode with seed ``s`` draws the distractor's steps after
    the context from :func:`~simgate_tracking.toy.world.take_seed` ``(s, r)``, and
    ``ToyWorld(stochastic=True, take=r).rollout`` replays it exactly; takes ``r >= takes`` are held out. The takes
    share the context, the actions and the agent's motion. With R = ``takes`` > 1, ``targets`` is
    (N, R, K+1, T, C, H, W), masks (N, R, T, M, H, W) and visibility (N, R, T, M) follow the reference branch of
    each take (the distractor is mask slot 2), outcomes are (N, R, K+1), or (N, R) with ``policy_groups``. The
    branches' actions are those of the deterministic probe set with the same arguments.

    Args:
        num_episodes: N, the number of resets.
        num_branches: K + 1 >= 2, the reference branch plus the counterfactual ones.
        horizon: T >= 2, future steps per branch.
        context_frames: T0 >= 1 frames before the first action.
        size: Frame side in pixels, 32 to 64.
        seed: The probe set's seed.
        num_objects: Coloured objects, 2 to 4.
        policy_groups: Give each episode a policy id and per-episode outcomes, for ranking mode.
        takes: R >= 1 real takes of every branch; more than one needs ``stochastic``.
        stochastic: Play the stochastic world, whose blue object walks at random.

    Raises:
        ValueError: If an argument is out of range, or ``takes`` > 1 without ``stochastic``.

    Example:
        >>> probe = make_probe_set(num_episodes=4, num_branches=2, horizon=6, seed=0)
        >>> [tuple(x.shape) for x in (probe.context, probe.targets, probe.masks, probe.outcomes)]
        [(4, 2, 3, 32, 32), (4, 2, 6, 3, 32, 32), (4, 6, 3, 32, 32), (4, 2)]
        >>> probe.manifest_hash == make_probe_set(num_episodes=4, num_branches=2, horizon=6, seed=0).manifest_hash
        True
        >>> probe = make_probe_set(num_episodes=4, num_branches=2, horizon=6, seed=0, takes=3, stochastic=True)
        >>> [tuple(x.shape) for x in (probe.context, probe.targets, probe.masks, probe.outcomes)]
        [(4, 2, 3, 32, 32), (4, 3, 2, 6, 3, 32, 32), (4, 3, 6, 3, 32, 32), (4, 3, 2)]
    """
    _check_arguments(num_episodes, num_branches, horizon, takes, stochastic)
    worlds = [ToyWorld(size=size, num_objects=num_objects, stochastic=stochastic, take=r) for r in range(takes)]
    # every field is filled in place, episode by episode: memory peaks at the probe set itself, not a multiple of it
    fields: dict[str, np.ndarray] = {}
    seeds, groups = [], []
    for i in range(num_episodes):
        reset = episode_seed(seed, i, PROBE_STREAM)
        reference = i % len(POLICIES) if policy_groups else i % 2
        branches, episodes = _branches(worlds[0], reset, reference, num_branches, horizon, context_frames)
        # every take plays the same actions from the same reset; only the world's own randomness is drawn afresh
        played = [episodes] + [[world.episode(reset, a, context_frames) for a in branches] for world in worlds[1:]]
        episode = {
            "context": episodes[0].context,
            "actions": np.eye(len(ACTIONS), dtype=np.float32)[np.stack(branches)],
            "targets": np.stack([np.stack([episode.future for episode in take]) for take in played]),
            "masks": np.stack([take[0].masks for take in played]),
            "visible": np.stack([take[0].visible for take in played]),
            "outcomes": np.array([[episode.outcome for episode in take] for take in played], dtype=bool),
        }
        for name, value in episode.items():
            if name not in fields:
                fields[name] = np.empty((num_episodes, *value.shape), dtype=value.dtype)
            fields[name][i] = value
        seeds.append(reset)
        groups.append(reference)
    tensors = {name: torch.from_numpy(value) for name, value in fields.items()}
    outcome_tensor = tensors["outcomes"]  # (N, R, K+1)
    # one take is given with a takes dimension of 1: ProbeSet stores it without, as the same probe set and hash
    return ProbeSet(
        context=tensors["context"],
        actions=tensors["actions"],
        targets=tensors["targets"],
        masks=tensors["masks"],
        visible=tensors["visible"],
        outcomes=outcome_tensor[..., 0] if policy_groups else outcome_tensor,
        groups=torch.tensor(groups) if policy_groups else None,
        seeds=torch.tensor(seeds, dtype=torch.long),
        name=f"toy-world-{size}px-seed{seed}" + ("-stochastic" if stochastic else ""),
    )
