"""Build a probe set from any Gymnasium environment that renders ``rgb_array`` frames."""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from simgate_tracking._utils import check_int
from simgate_tracking.probe import ProbeSet
from simgate_tracking.probe_writer import ProbeWriter
from simgate_tracking.probes.actions import ActionEncoder, action_encoder_for
from simgate_tracking.probes.assembly import DrawnCheck, Outcome, played, stacked, warn_if_no_objects
from simgate_tracking.probes.assembly import stack_takes as _stack_takes  # noqa: F401 - its old import path
from simgate_tracking.probes.episodes import MaskExtractor, Policy, ReseedFn, SuccessFn
from simgate_tracking.probes.frames import check_size
from simgate_tracking.probes.playing import Plan
from simgate_tracking.probes.snapshot import CloneFn, RestoreFn

__all__ = ["build_probe_set", "check_render_mode"]

_OUTCOMES = ("success", "return")


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


def check_render_mode(env: Any) -> None:
    """Refuse an environment that does not render RGB arrays, the frames every probe and planner reads."""
    mode = getattr(env, "render_mode", None)
    if mode != "rgb_array":
        raise ValueError(
            f'Expected env_fn() to return an environment with render_mode="rgb_array" but got render_mode={mode!r}: '
            'make it with gymnasium.make(..., render_mode="rgb_array")'
        )


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
    save_to: str | os.PathLike[str] | None = None,
    workers: int = 1,
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
        save_to: Write the episodes to this file as they are played, in :meth:`ProbeSet.save`'s format, instead
            of holding them all in memory; the probe set returned is that file opened memory-mapped
            (``ProbeSet.load(save_to, mmap=True)``).
        workers: Play the seeds in this many worker processes (``spawn``ed: ``env_fn``, the policies and the other
            callables must be picklable, module-level functions or ``functools.partial`` of them). Each worker makes
            its environment once with ``env_fn`` and plays whole seeds; the probe set, and its hash, are the ones
            one process builds.

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
    plan = Plan(
        policies=_check_policies(reference_policy),
        num_counterfactual=check_int(num_counterfactual, "num_counterfactual", 1),
        horizon=check_int(horizon, "horizon", 2),
        context_frames=check_int(context_frames, "context_frames", 1),
        size=check_size(size),
        counterfactual_policy=counterfactual_policy,
        mask_extractor=mask_extractor,
        clone_fn=clone_fn,
        restore_fn=restore_fn,
        takes=check_int(takes, "takes", 1),
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
    check_int(workers, "workers", 1)
    env = env_fn()
    try:
        check_render_mode(env)
        encoder = action_encoder if action_encoder is not None else action_encoder_for(env.action_space)
        episodes = played(env, env_fn, seed_list, plan, encoder, outcome, workers)
        if save_to is None:
            held = list(episodes)
            _check_drawn(held)
            return stacked(held, plan, name)
        return _written(episodes, plan, save_to, name)
    finally:
        env.close()


def _check_drawn(episodes: Iterable[dict[str, Any]]) -> None:
    check = DrawnCheck()
    for fields in episodes:
        check.update(fields)
    check.finish()


def _written(episodes: Iterable[dict[str, Any]], plan: Plan, path: str | os.PathLike[str], name: str) -> ProbeSet:
    """Write the episodes to ``path`` one at a time; the probe set opened memory-mapped."""
    check = DrawnCheck()
    with ProbeWriter(path, name=name) as writer:
        for fields in episodes:
            check.update(fields)
            writer.add(**fields)
        check.finish()
        if not warn_if_no_objects(writer.num_objects, plan):
            writer.drop("masks", "visible")
    return ProbeSet.load(path, mmap=True)
