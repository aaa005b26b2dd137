"""Closed-loop planning on the world model: does a planner that imagines with the model succeed in reality?"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from simgate_tracking._utils import check_int
from simgate_tracking.planning.environments import PlanningEnvironment
from simgate_tracking.planning.planner import CrossEntropyPlanner, Plan
from simgate_tracking.planning.result import PlanningResult
from simgate_tracking.rollout import (
    RolloutError,
    RolloutFn,
    TaskFn,
    preserved_rng,
    resolve_rollout_fn,
    rollout_branch,
)

Context = Literal["observed", "reset"]
Imagine = Callable[[Tensor, "PlannedEpisode", Any], tuple[Tensor, Tensor]]

__all__ = ["PlanningProbe"]


@dataclass
class PlannedEpisode:
    """One planning episode as it is played: what was seen and done, and what the planner expected."""

    seed: int
    observed: list[Tensor]
    context_frames: int
    played: list[Any] = field(default_factory=list)  # action indices, or (A,) vectors for continuous actions
    expected: list[Tensor] = field(default_factory=list)
    success: bool = False


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a list of ints.

    Raises:
        ValueError: If it is not a non-empty sequence of non-negative ints.
    """
    values = [] if isinstance(seeds, (int, str, bytes)) else list(seeds)
    if not values or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in values):
        raise ValueError(f"Expected argument `seeds` to be a non-empty sequence of non-negative ints but got {seeds!r}")
    return [int(s) for s in values]


def _padded(frames: list[Tensor], length: int) -> Tensor:
    """(length, C, H, W) on the CPU: the frames, then the last one repeated (the episode ended)."""
    stacked = torch.stack([f.detach().cpu() for f in frames])
    stacked = stacked.float() / 255.0 if stacked.dtype == torch.uint8 else stacked.float()
    return torch.cat([stacked, stacked[-1:].expand(length - len(frames), *stacked.shape[1:])])


class PlanningProbe:
    """Closed-loop planning: a planner imagines with the world model, acts in the real environment, and must succeed.

    Every episode resets the real environment from its seed and runs model-predictive control: a
    :class:`CrossEntropyPlanner` scores candidate action sequences by the world model's rollouts (all candidates
    in one ``rollout`` call) judged by ``task_fn``, plays the first ``replan_every`` actions of the best one in the
    real environment, and plans again, until the environment reports success or ``max_steps`` steps are played.
    The same planner, with the same random draws, imagining with the real environment itself (saved and restored
    for every candidate) gives the baseline: the success the planner reaches with a perfect simulator. The
    baseline does not depend on the model, so it is computed once.

    The world model imagines from ``context="observed"``: the last T0 real frames (closed loop, as a deployed
    planner would); or ``"reset"``: the episode's reset frames followed by every action played so far (open loop
    from the reset, so the model must also keep the past straight; environment replays such as
    ``ToyWorld.rollout`` and ``EnvironmentReplay`` work as models this way). Each call gets one generator per
    candidate, seeded with the episode's seed. Everything is deterministic from ``seeds`` and ``seed``; RNG states
    are restored afterwards.

    Args:
        environment: The real environment (:class:`PlanningEnvironment`).
        task_fn: Judges imagined futures, ``(B, T, C, H, W) -> (B,)`` task values, higher is better; a graded
            judge such as :func:`~simgate_tracking.planning.goal_progress` lets the planner tell near from far.
        seeds: Reset seeds, one episode each.
        max_steps: Real steps an episode may take before it counts as failed.
        horizon: Actions per imagined sequence.
        candidates: Sequences imagined per planner iteration.
        iterations: Planner iterations per decision (1: random shooting).
        replan_every: Real steps played from each plan before planning again, 1 to ``horizon``.
        context: ``"observed"`` or ``"reset"``, what the world model imagines from.
        num_sample_episodes: Episodes whose frames are kept for dashboards.
        seed: Seeds the planner's random draws.

    Raises:
        ValueError: On a bad argument.

    Example:
        >>> from simgate_tracking.toy import ToyPlanningEnvironment, ToyWorld, toy_goal_progress
        >>> probe = PlanningProbe(ToyPlanningEnvironment(), toy_goal_progress, seeds=[0, 1], max_steps=12,
        ...                       horizon=4, candidates=8, context="reset")
        >>> result = probe.run(ToyWorld())  # reality as the world model: it plans exactly as the baseline does
        >>> result.scores()
        {'planning_success': 1.0, 'planning_success_real': 1.0}
        >>> result.steps == result.steps_real
        True
    """

    def __init__(
        self,
        environment: PlanningEnvironment,
        task_fn: TaskFn,
        seeds: Sequence[int],
        max_steps: int = 20,
        horizon: int = 6,
        candidates: int = 32,
        iterations: int = 2,
        replan_every: int = 1,
        context: Context = "observed",
        num_sample_episodes: int = 2,
        seed: int = 0,
    ) -> None:
        if not isinstance(environment, PlanningEnvironment):
            raise ValueError(
                "Expected argument `environment` to be a PlanningEnvironment (num_actions, reset, step, succeeded, "
                f"save, restore) but got {type(environment).__name__}"
            )
        planner = CrossEntropyPlanner(environment.num_actions, horizon, candidates, iterations)
        self._configure(
            environment, task_fn, seeds, max_steps, planner, replan_every, context, num_sample_episodes, seed
        )

    def _configure(  # noqa: PLR0913
        self,
        environment: Any,
        task_fn: TaskFn,
        seeds: Sequence[int],
        max_steps: int,
        planner: Any,
        replan_every: int,
        context: Context,
        num_sample_episodes: int,
        seed: int,
    ) -> None:
        """Check and keep the arguments every planning probe shares, whatever its planner and action space."""
        if not callable(task_fn):
            raise ValueError(f"Expected argument `task_fn` to be callable but got {task_fn!r}")
        if context not in ("observed", "reset"):
            raise ValueError(f"Expected argument `context` to be 'observed' or 'reset' but got {context!r}")
        self.environment, self.task_fn, self.context = environment, task_fn, context
        self.seeds = check_seeds(seeds)
        self.max_steps = check_int(max_steps, "max_steps", 1)
        self.planner = planner
        self.replan_every = check_int(replan_every, "replan_every", 1)
        if self.replan_every > self.planner.horizon:
            raise ValueError(
                f"Expected argument `replan_every` to be at most `horizon`={planner.horizon} but got {replan_every}"
            )
        self.num_sample_episodes = check_int(num_sample_episodes, "num_sample_episodes", 0)
        self.seed = check_int(seed, "seed", 0)
        self._baseline: list[PlannedEpisode] | None = None

    def __len__(self) -> int:
        return len(self.seeds)

    # ------------------------------------------------------------------ run
    def run(self, world_model: Any, device: torch.device | str | None = None) -> PlanningResult:
        """Plan with ``world_model`` in every episode, and with the real environment (computed once).

        Args:
            world_model: ``rollout(context, actions, generator=None) -> frames``, or a model with a ``rollout``
                method (an ``nn.Module`` is put in eval mode for the run and restored after).
            device: Where the model imagines; default: its first parameter's device, else CPU.

        Raises:
            RolloutError: If the model's frames or ``task_fn``'s values do not have the expected shape.
        """
        rollout_fn = resolve_rollout_fn(world_model)
        module = world_model if isinstance(world_model, nn.Module) else getattr(rollout_fn, "__self__", None)
        params = list(module.parameters()) if isinstance(module, nn.Module) else []
        device = torch.device(device) if device is not None else (params[0].device if params else torch.device("cpu"))
        was_training = module.training if isinstance(module, nn.Module) else False
        try:
            if isinstance(module, nn.Module):
                module.eval()
            with torch.no_grad(), preserved_rng([device]):
                model = [self._play(i, self._model_imagination(rollout_fn, device)) for i in range(len(self))]
                real = self.baseline()
        finally:
            if isinstance(module, nn.Module):
                module.train(was_training)
        return self._result(model, real)

    def baseline(self) -> list[PlannedEpisode]:
        """The planner's episodes imagining with the real environment, computed on the first call only."""
        if self._baseline is None:
            with torch.no_grad(), preserved_rng():
                self._baseline = [self._play(i, self._real_imagination) for i in range(len(self))]
        return self._baseline

    def _result(self, model: list[PlannedEpisode], real: list[PlannedEpisode]) -> PlanningResult:
        kept = model[: self.num_sample_episodes]
        expected = happened = None
        if kept:
            expected = torch.stack([_padded(e.expected, self.max_steps) for e in kept])
            happened = torch.stack([_padded(e.observed[e.context_frames :], self.max_steps) for e in kept])
        return PlanningResult(
            success=[e.success for e in model],
            success_real=[e.success for e in real],
            steps=[len(e.played) for e in model],
            steps_real=[len(e.played) for e in real],
            sample_index=list(range(len(kept))),
            expected=expected,
            happened=happened,
        )

    # -------------------------------------------------------------- episode
    def _generator(self, index: int, step: int) -> torch.Generator:
        mixed = np.random.SeedSequence([self.seed, index, step]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(mixed))

    def _play(self, index: int, imagine: Imagine) -> PlannedEpisode:
        """One episode of model-predictive control in the real environment."""
        env = self.environment
        context = env.reset(self.seeds[index])
        episode = PlannedEpisode(self.seeds[index], list(context.unbind(0)), int(context.shape[0]))
        plan: Plan | None = None
        for step in range(self.max_steps):
            offset = step % self.replan_every
            if plan is None or offset == 0:
                plan = self._decide(index, step, episode, imagine, plan)
            action = self._action(plan.actions[offset])
            episode.expected.append(plan.frames[offset])
            episode.observed.append(env.step(action))
            episode.played.append(action)
            if env.succeeded():
                episode.success = True
                break
        return episode

    def _decide(self, index: int, step: int, episode: PlannedEpisode, imagine: Imagine, last: Plan | None) -> Plan:
        """Plan from the environment's current state, which is left as it was."""
        saved = self.environment.save()

        def score(actions: Tensor) -> tuple[Tensor, Tensor]:
            return imagine(actions, episode, saved)

        warm = None if last is None else self._shifted(last.actions)
        plan = self.planner.plan(score, self._generator(index, step), warm)
        self.environment.restore(saved)
        return plan

    def _action(self, entry: Tensor) -> Any:
        """What the real environment plays for one entry of a plan: here an action index."""
        return int(entry)

    def _shifted(self, actions: Tensor) -> Tensor:
        """The rest of the last plan, padded with its last action: the planner's first guess for the next one."""
        k = self.replan_every
        return torch.cat([actions[k:], actions[-1:].expand(k)])

    # ----------------------------------------------------------- imagining
    def _model_imagination(self, rollout_fn: RolloutFn, device: torch.device) -> Imagine:
        num_actions = self.environment.num_actions

        def imagine(actions: Tensor, episode: PlannedEpisode, saved: Any) -> tuple[Tensor, Tensor]:
            n = actions.shape[0]
            if self.context == "observed":
                context, prefix = episode.observed[-episode.context_frames :], []
            else:
                context, prefix = episode.observed[: episode.context_frames], episode.played
            plays = torch.cat([torch.tensor(prefix, dtype=torch.long).expand(n, -1), actions], dim=1)
            frames = torch.stack(context).to(device).unsqueeze(0).repeat(n, 1, 1, 1, 1)
            steps = (plays.shape[1], *frames.shape[2:])
            seeds = torch.full((n,), episode.seed, dtype=torch.long)
            onehot = F.one_hot(plays, num_actions).float().to(device)
            futures = rollout_branch(rollout_fn, frames, onehot, seeds, steps)[:, len(prefix) :]
            return self._judge(futures), futures

        return imagine

    def _real_imagination(self, actions: Tensor, episode: PlannedEpisode, saved: Any) -> tuple[Tensor, Tensor]:
        env, futures = self.environment, []
        for sequence in actions.tolist():
            env.restore(saved)
            futures.append(torch.stack([env.step(a) for a in sequence]))
        frames = torch.stack(futures)
        return self._judge(frames), frames

    def _judge(self, frames: Tensor) -> Tensor:
        values = self.task_fn(frames)
        if not isinstance(values, Tensor) or tuple(values.shape) != (frames.shape[0],):
            got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise RolloutError(
                f"Expected task_fn(frames) to return task values of shape (B,) = ({frames.shape[0]},) but got {got}"
            )
        return values


# the names this module used before they were public
_Episode = PlannedEpisode
_check_seeds = check_seeds
