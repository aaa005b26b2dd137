"""Probe set -> rollouts -> scorecard: the one code path behind the callback and :func:`evaluate`.

One call of the world model lives in :mod:`simgate_tracking.world_model`, the frames' value range in
:mod:`simgate_tracking.value_range`; both are importable from here as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import torch
from torch import Tensor

from simgate_tracking._utils import check_positive_int, rank_zero_warn
from simgate_tracking.functional._checks import as_frames
from simgate_tracking.functional.task_validity import TaskMode
from simgate_tracking.metrics.scorecard import SimulatorScorecard
from simgate_tracking.probe import ProbeBatch, ProbeSet
from simgate_tracking.report import RolloutSamples
from simgate_tracking.task_judge import TaskFn, TaskOutcomes, task_outcomes
from simgate_tracking.value_range import (
    UNIT_RANGE,
    VALUE_TOLERANCE,
    ObservedRange,
    ValueRangeLike,
    check_value_range,
    rescaled,
)
from simgate_tracking.world_model import (
    RolloutError,
    RolloutFn,
    preserved_rng,
    resolve_rollout_fn,
    rollout_branch,
)

__all__ = [
    "RESET_WINDOW",
    "UNIT_RANGE",
    "VALUE_TOLERANCE",
    "ObservedRange",
    "ProbeRunner",
    "ProgressFn",
    "RolloutError",
    "RolloutFn",
    "TaskFn",
    "ValueRangeLike",
    "check_value_range",
    "preserved_rng",
    "rescaled",
    "resolve_rollout_fn",
    "rollout_branch",
]

ProgressFn = Callable[[int, int], None]
Chunk = tuple[Tensor, int]  # a batch's episode indices, and how many of them, from the first, are scored
RESET_WINDOW = 4  # batches per window; two windows' reference rollouts wait for the reset pass: bounded in N


def _head(batch: ProbeBatch, count: int) -> ProbeBatch:
    """The first ``count`` episodes of ``batch`` (views, no copy)."""
    heads: dict[str, Any] = {f.name: getattr(batch, f.name) for f in fields(batch)}
    cut: dict[str, Any] = {name: None if x is None else x[:count] for name, x in heads.items()}
    return replace(batch, **cut)


class ProbeRunner:
    """Roll a world model out on a probe set and feed a :class:`SimulatorScorecard`.

    The batches go in windows of :data:`RESET_WINDOW`. Pass 1 visits a window's batches in order: the reference
    branch (one call per batch), then every counterfactual branch (one call per batch, B*K rows). Pass 2 rolls the
    reference branch out again with the same seeds, visiting the same batches in reverse order, so that state carried
    from one rollout to the next shows while an honestly seeded model reproduces exactly. A window's pass 2 runs after
    the next window's pass 1, so every batch but the very last follows other episodes in both passes. Only two
    windows' first-pass reference rollouts wait for pass 2 (on the CPU): memory stays a few batches deep whatever the
    number of episodes. A probe set of up to :data:`RESET_WINDOW` batches is one window: pass 2 visits all its
    batches in reverse order.

    A shard padded to the length of its peers' (:func:`~simgate_tracking.sharding.padded_shard`) rolls its padding
    episodes out like the others, so every rank makes the same world-model calls with the same shapes (a model with
    sharded parameters gathers them in every call), and discards their scores.

    Every call gets inputs no other call reads afterwards, and ``task_fn`` gets frames nothing else reads: a rollout
    or a task judge that changes its inputs in place changes no score.

    Args:
        probe_set: The probe episodes.
        batch_size: Episodes per world-model call.
        task_fn: Judges task outcomes on model futures, ``(B, T, C, H, W) -> (B,)`` in [0, 1] (rescaled from
            ``value_range``); used when the probe set has outcomes.
        value_range: The values the model's float frames span, ``(low, high)``: ``(-1, 1)`` for a tanh output,
            ``(0, 255)`` for pixel values; they are rescaled to [0, 1] before scoring. uint8 frames are 0..255 by
            their dtype. Frames outside it by more than 10% of it get one warning per check, naming both ranges.

    Raises:
        ValueError: If ``batch_size`` is not a positive int or ``value_range`` not a pair ``low < high``.
    """

    def __init__(
        self,
        probe_set: ProbeSet,
        batch_size: int = 8,
        task_fn: TaskFn | None = None,
        value_range: ValueRangeLike = UNIT_RANGE,
    ) -> None:
        check_positive_int(batch_size, "batch_size")
        self.probe_set = probe_set
        self.batch_size = batch_size
        self.task_fn = task_fn
        self.value_range = check_value_range(value_range)

    @property
    def task_mode(self) -> TaskMode:
        """``ranking`` with policy groups, ``decision`` with per-branch outcomes, else ``agreement``."""
        if self.probe_set.groups is not None:
            return "ranking"
        return "decision" if self._per_branch_outcomes else "agreement"

    @property
    def _per_branch_outcomes(self) -> bool:
        outcomes = self.probe_set.outcomes
        return outcomes is not None and outcomes.ndim == (2 if self.probe_set.num_takes == 1 else 3)

    def make_scorecard(self, **kwargs: Any) -> SimulatorScorecard:
        """A scorecard in the task mode the probe set calls for (see :attr:`task_mode`)."""
        groups = self.probe_set.groups
        num_groups = 2 if groups is None else max(int(groups.max()) + 1, 2)
        return SimulatorScorecard(
            task_mode=self.task_mode, num_groups=num_groups, num_takes=self.probe_set.num_takes, **kwargs
        )

    def run(
        self,
        rollout_fn: RolloutFn,
        scorecard: SimulatorScorecard,
        device: torch.device | str = "cpu",
        indices: Tensor | None = None,
        progress: ProgressFn | None = None,
        sample_episodes: tuple[int, ...] = (),
        padding: int = 0,
    ) -> RolloutSamples | None:
        """Roll out the episodes ``indices`` (default: all) on ``device`` and update ``scorecard``.

        RNG states are restored afterwards. Call under ``torch.no_grad()`` and with the model in eval mode. Warns
        once if the rollouts left ``value_range``. The last ``padding`` of ``indices`` are rolled out and not scored.

        Raises:
            ValueError: If ``padding`` is not an int in ``[0, len(indices)]``.

        Returns:
            CPU copies of every branch's rollout for the episodes of ``sample_episodes`` among ``indices`` (for
            dashboards), or None when there are none.
        """
        device = torch.device(device)
        # batches are built when their turn comes: a list of them all would hold every probe episode on the device
        order = torch.arange(len(self.probe_set)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        if not isinstance(padding, int) or isinstance(padding, bool) or not 0 <= padding <= len(order):
            raise ValueError(f"Expected argument `padding` to be an int in [0, {len(order)}] but got {padding!r}")
        scored = len(order) - padding  # the scored episodes come first: a batch scores a prefix of its rows
        chunks = [
            (chunk, min(len(chunk), max(0, scored - start)))
            for start, chunk in zip(range(0, len(order), self.batch_size), order.split(self.batch_size), strict=True)
        ]
        state = _RunState(rollout_fn, scorecard, device, 2 * len(chunks), progress, sample_episodes, self.value_range)
        windows = [chunks[start : start + RESET_WINDOW] for start in range(0, len(chunks), RESET_WINDOW)]
        with preserved_rng([device]):
            waiting: tuple[list[Chunk], list[Tensor]] | None = None
            for window in windows:
                kept = self._first_passes(window, state)
                # a window's reset pass runs after the next window's first pass: its first batch (the window's last)
                # then follows other episodes, as every other batch of the reset pass does
                if waiting is not None:
                    self._reset_passes(*waiting, state)
                waiting = (window, kept)
            if waiting is not None:
                self._reset_passes(*waiting, state)
        warning = state.observed.warning()
        if warning is not None:
            rank_zero_warn(warning)
        return self._samples(state.samples)

    def _first_passes(self, chunks: list[Chunk], state: _RunState) -> list[Tensor]:
        """Pass 1 over a window's batches, in order; returns their reference rollouts, kept for pass 2 (on the CPU)."""
        kept: list[Tensor] = []
        for chunk, scored in chunks:
            batch = next(self.probe_set.batches(len(chunk), chunk, state.device))
            reference, counterfactual = self._first_pass(batch, scored, state)
            # pass 1's reference rollouts wait for pass 2 off the accelerator, so device memory stays one batch deep
            kept.append(reference if reference.device.type == "cpu" else reference.to("cpu", non_blocking=True))
            for row, episode in enumerate(batch.index[:scored].tolist()):
                if episode in state.sample_episodes:
                    frames = torch.cat([reference[row : row + 1], counterfactual[row]])
                    state.samples[episode] = as_frames(frames, "rollout").detach().float().cpu()
            del batch, reference, counterfactual  # before the next batch is built: memory stays one batch deep
            state.tick()
        return kept

    def _reset_passes(self, chunks: list[Chunk], kept: list[Tensor], state: _RunState) -> None:
        """Pass 2 over a window's batches, in reverse order, each against its kept first-pass reference rollout."""
        for (chunk, scored), first in zip(reversed(chunks), reversed(kept), strict=True):
            batch = next(self.probe_set.batches(len(chunk), chunk, state.device))
            seeds = self.probe_set.seeds[batch.index.cpu()]
            second = self._roll(state, batch.context, batch.actions[:, 0], seeds)
            real = batch.targets[:scored, :, 0] if self.probe_set.num_takes > 1 else batch.targets[:scored, 0]
            if scored:
                first = first[:scored].to(state.device)
                state.scorecard.update_reset(first, second[:scored], real, episode_index=batch.index[:scored])
            del batch, second
            state.tick()
        kept.clear()  # a window's rollouts go as soon as its reset pass is done

    def _roll(self, state: _RunState, context: Tensor, actions: Tensor, seeds: Tensor) -> Tensor:
        frames_shape = (self.probe_set.horizon, *self.probe_set.frame_shape)
        return rollout_branch(
            state.rollout_fn, context, actions, seeds, frames_shape, self.value_range, observed=state.observed
        )

    def _samples(self, model: dict[int, Tensor]) -> RolloutSamples | None:
        if not model:
            return None
        order = sorted(model)
        index = torch.tensor(order, dtype=torch.long)
        shown = self.probe_set.take(0)  # dashboards show the model beside one real take
        real = shown.targets[index]
        masks = None if shown.masks is None else shown.masks[index]
        real = real.float().div(255.0) if real.dtype == torch.uint8 else real.float()
        model_frames = torch.nan_to_num(torch.stack([model[i] for i in order]), nan=0.0).clamp(0, 1)
        return RolloutSamples(episode_index=order, real=real, model=model_frames, masks=masks)

    def _first_pass(self, batch: ProbeBatch, scored: int, state: _RunState) -> tuple[Tensor, Tensor]:
        """Reference (B, T, ...) and counterfactual (B, K, T, ...) rollouts of a batch, its first ``scored`` scored."""
        seeds = self.probe_set.seeds[batch.index.cpu()]
        k = self.probe_set.num_branches - 1
        # made before the reference call: whatever that call does to its context, no other call sees (no extra copy)
        branch_context = batch.context.repeat_interleave(k, dim=0)
        reference = self._roll(state, batch.context, batch.actions[:, 0], seeds)
        counterfactual = self._roll(
            state, branch_context, batch.actions[:, 1:].flatten(0, 1), seeds.repeat_interleave(k)
        ).unflatten(0, (len(batch), k))
        # the task judge sees the whole batch too: it may be a model with sharded parameters
        task: TaskOutcomes = (None, None, None)
        if self.task_fn is not None:
            task = task_outcomes(
                self.task_fn, self.task_mode, self._per_branch_outcomes, reference, counterfactual, batch
            )
        if not scored:
            return reference, counterfactual
        rows = scored * (1 if task[0] is None else len(task[0]) // len(batch))  # judged rows per episode: 1 or K+1
        task_pred, task_real, groups = (None if x is None else x[:rows] for x in task)
        scored_batch = _head(batch, scored)
        # the branches go in apart: the scorecard stacks them a few episodes at a time, so the batch is never copied
        state.scorecard.update(
            (reference[:scored], counterfactual[:scored]),
            scored_batch.targets,
            masks=scored_batch.masks,
            visible=scored_batch.visible,
            task_pred=task_pred,
            task_real=task_real,
            groups=groups,
            episode_index=scored_batch.index,
        )
        return reference, counterfactual


class _RunState:
    """What one :meth:`ProbeRunner.run` carries from batch to batch."""

    def __init__(  # noqa: PLR0913
        self,
        rollout_fn: RolloutFn,
        scorecard: SimulatorScorecard,
        device: torch.device,
        total: int,
        progress: ProgressFn | None,
        sample_episodes: tuple[int, ...],
        value_range: ValueRangeLike,
    ) -> None:
        self.rollout_fn, self.scorecard, self.device = rollout_fn, scorecard, device
        self.total, self.done, self.progress = total, 0, progress
        self.sample_episodes = sample_episodes
        self.samples: dict[int, Tensor] = {}
        self.observed = ObservedRange(value_range)

    def tick(self) -> None:
        """One world-model batch done."""
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
