"""Probe set -> rollouts -> scorecard: the one code path behind the callback and :func:`evaluate`."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from simgate_tracking.functional._checks import as_frames
from simgate_tracking.functional.task_validity import TaskMode
from simgate_tracking.metrics._rank_zero import rank_zero_warn
from simgate_tracking.metrics.scorecard import SimulatorScorecard
from simgate_tracking.probe import ProbeBatch, ProbeSet
from simgate_tracking.report import RolloutSamples

TaskFn = Callable[[Tensor], Tensor]
ProgressFn = Callable[[int, int], None]
ValueRangeLike = tuple[float, float]
UNIT_RANGE: ValueRangeLike = (0.0, 1.0)
VALUE_TOLERANCE = 0.1  # of the declared range: noise and overshoot pass, 1.2x brightness, tanh or 0..255 do not
RESET_WINDOW = 4  # batches per window; two windows' reference rollouts wait for the reset pass: bounded in N


class RolloutFn(Protocol):
    """``rollout(context, actions, generator=None) -> frames``: (B, T0, C, H, W), (B, T, A) -> (B, T, C, H, W)."""

    def __call__(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """Roll the world model out from ``context`` under ``actions``."""


class RolloutError(ValueError):
    """A rollout or task judgement that does not fit the probe set (shape, dtype or device)."""


def resolve_rollout_fn(model: Any) -> RolloutFn:
    """The rollout function of ``model``: its ``rollout`` method, or ``model`` itself if it is a plain callable.

    Raises:
        TypeError: If ``model`` has no ``rollout`` method and is not callable.
    """
    rollout = getattr(model, "rollout", None)
    if callable(rollout):
        return rollout  # type: ignore[no-any-return]
    if callable(model) and not isinstance(model, nn.Module):
        return model  # type: ignore[no-any-return]
    raise TypeError(
        f"Expected a world model with a `rollout(context, actions, generator=None)` method, or a `rollout_fn`, "
        f"but got {type(model).__name__} without one"
    )


@contextmanager
def preserved_rng(devices: list[torch.device] | None = None) -> Iterator[None]:
    """Restore the torch (CPU and CUDA), numpy and Python RNG states on exit, so scoring never perturbs training."""
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = [d for d in devices or [] if d.type == "cuda"]
    with torch.random.fork_rng(devices=cuda, enabled=True):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _batch_seed(seeds: Tensor) -> int:
    """One global seed per batch, a function of its episodes' seeds only."""
    mixed = 0
    for seed in seeds.tolist():
        mixed = (mixed * 1_000_003 + int(seed)) % (2**63 - 1)
    return mixed


def _generators(seeds: Tensor, device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds.tolist()]


def _check_frames(frames: Any, expected: tuple[int, ...], device: torch.device, what: str) -> Tensor:
    if not isinstance(frames, Tensor):
        raise RolloutError(
            f"Expected {what} to return a torch.Tensor of shape {expected} but got {type(frames).__name__}"
        )
    if tuple(frames.shape) != expected:
        raise RolloutError(
            f"Expected {what} to return frames of shape (B, T, C, H, W) = {expected} but got {tuple(frames.shape)}"
        )
    if not (frames.is_floating_point() or frames.dtype == torch.uint8):
        raise RolloutError(f"Expected {what} to return float frames in [0, 1] or uint8 but got dtype {frames.dtype}")
    if frames.device.type != device.type:
        raise RolloutError(f"Expected {what} to return frames on device {device} but got {frames.device}")
    return frames


def check_value_range(value_range: Any) -> ValueRangeLike:
    """``value_range`` as a pair of floats ``(low, high)``, finite, ``low < high``.

    Raises:
        ValueError: Otherwise.
    """
    ok = (
        isinstance(value_range, tuple | list)
        and len(value_range) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value_range)
        and value_range[0] < value_range[1]
    )
    if not ok:
        raise ValueError(
            "Expected argument `value_range` to be a pair (low, high) of finite numbers with low < high, the values "
            f"the model's float frames span (for example (0, 1), (-1, 1) or (0, 255)), but got {value_range!r}"
        )
    return float(value_range[0]), float(value_range[1])


class ObservedRange:
    """The lowest and highest finite value of a check's float rollouts, gathered on the device and read once.

    Args:
        value_range: The range the model declared its float frames span.
    """

    def __init__(self, value_range: ValueRangeLike = UNIT_RANGE) -> None:
        self.value_range = value_range
        self._seen: Tensor | None = None  # (2,) float32 on the rollouts' device: NaN until a finite value shows

    def update(self, frames: Tensor) -> None:
        """Fold in one rollout's range; reads nothing on the host (a NaN or Inf rollout leaves it unchanged)."""
        if frames.dtype == torch.uint8 or frames.numel() == 0:
            return  # uint8 frames are 0..255 by their dtype
        seen = torch.stack(torch.aminmax(frames.detach())).float()
        seen = seen.masked_fill(~torch.isfinite(seen), math.nan)
        if self._seen is not None:
            seen = torch.stack([torch.fmin(self._seen[0], seen[0]), torch.fmax(self._seen[1], seen[1])])
        self._seen = seen

    def warning(self) -> str | None:
        """What to tell the user when the frames left the declared range by more than the tolerance, else None."""
        if self._seen is None:
            return None
        low, high = self._seen.tolist()  # the one host read of the range in a check
        a, b = self.value_range
        slack = VALUE_TOLERANCE * (b - a)
        if math.isnan(low) or (low >= a - slack and high <= b + slack):
            return None
        return (
            f"The world model's rollout frames range from {low:.4g} to {high:.4g}, but the gate expects values in "
            f"[{a:g}, {b:g}] (value_range, tolerance {slack:.3g}): they are scored against real frames in [0, 1], so "
            f"every score is off. {_range_hint(low, high, self.value_range)}"
        )


def _range_hint(low: float, high: float, declared: ValueRangeLike) -> str:
    """Which range to declare, guessed from the observed one."""
    slack = VALUE_TOLERANCE
    if declared == UNIT_RANGE and -1.0 - slack <= low < -slack and high <= 1.0 + slack:
        return "A tanh output? Pass value_range=(-1, 1) and the gate rescales it."
    if declared == UNIT_RANGE and low >= -slack and 2.0 < high <= 255 * (1 + slack):
        return "Pixel values? Pass value_range=(0, 255) (or return uint8) and the gate rescales it."
    return "Pass the range the model's frames span as value_range=(low, high), or clamp them."


def rescaled(frames: Tensor, value_range: ValueRangeLike) -> Tensor:
    """Float frames of ``value_range`` mapped to [0, 1] (a new tensor); uint8 and [0, 1] frames pass unchanged."""
    low, high = value_range
    if value_range == UNIT_RANGE or not frames.is_floating_point():
        return frames
    return torch.sub(frames, low).div_(high - low)


def rollout_branch(  # noqa: PLR0913
    rollout_fn: RolloutFn,
    context: Tensor,
    actions: Tensor,
    seeds: Tensor,
    horizon_frames: tuple[int, ...],
    value_range: ValueRangeLike = UNIT_RANGE,
    observed: ObservedRange | None = None,
) -> Tensor:
    """One call of the world model for a batch: per-episode seeded generators, global RNG seeded from the batch.

    Args:
        rollout_fn: The world model's rollout.
        context: (B, T0, C, H, W).
        actions: (B, T, A).
        seeds: (B,) CPU int64 seeds.
        horizon_frames: The expected (T, C, H, W) of each rollout.
        value_range: The range the model's float frames span; they come back rescaled to [0, 1].
        observed: Where the frames' range is gathered (before rescaling), or None.
    """
    torch.manual_seed(_batch_seed(seeds))
    frames = rollout_fn(context, actions, generator=_generators(seeds, context.device))
    frames = _check_frames(frames, (context.shape[0], *horizon_frames), context.device, "rollout(context, actions)")
    if observed is not None:
        observed.update(frames)
    return rescaled(frames, value_range)


def _judge(task_fn: TaskFn, frames: Tensor, count: int) -> Tensor:
    verdict = task_fn(frames)
    if not isinstance(verdict, Tensor) or tuple(verdict.shape) != (count,):
        got = tuple(verdict.shape) if isinstance(verdict, Tensor) else type(verdict).__name__
        raise RolloutError(f"Expected task_fn(frames) to return outcomes of shape (B,) = ({count},) but got {got}")
    return verdict


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
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"Expected argument `batch_size` to be a positive int but got {batch_size!r}")
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
    ) -> RolloutSamples | None:
        """Roll out the episodes ``indices`` (default: all) on ``device`` and update ``scorecard``.

        RNG states are restored afterwards. Call under ``torch.no_grad()`` and with the model in eval mode. Warns
        once if the rollouts left ``value_range``.

        Returns:
            CPU copies of every branch's rollout for the episodes of ``sample_episodes`` among ``indices`` (for
            dashboards), or None when there are none.
        """
        device = torch.device(device)
        # batches are built when their turn comes: a list of them all would hold every probe episode on the device
        order = torch.arange(len(self.probe_set)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        chunks = order.split(self.batch_size)
        state = _RunState(rollout_fn, scorecard, device, 2 * len(chunks), progress, sample_episodes, self.value_range)
        windows = [chunks[start : start + RESET_WINDOW] for start in range(0, len(chunks), RESET_WINDOW)]
        with preserved_rng([device]):
            waiting: tuple[tuple[Tensor, ...], list[Tensor]] | None = None
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

    def _first_passes(self, chunks: tuple[Tensor, ...], state: _RunState) -> list[Tensor]:
        """Pass 1 over a window's batches, in order; returns their reference rollouts, kept for pass 2 (on the CPU)."""
        kept: list[Tensor] = []
        for chunk in chunks:
            batch = next(self.probe_set.batches(len(chunk), chunk, state.device))
            reference, counterfactual = self._first_pass(batch, state)
            # pass 1's reference rollouts wait for pass 2 off the accelerator, so device memory stays one batch deep
            kept.append(reference if reference.device.type == "cpu" else reference.to("cpu", non_blocking=True))
            for row, episode in enumerate(batch.index.tolist()):
                if episode in state.sample_episodes:
                    frames = torch.cat([reference[row : row + 1], counterfactual[row]])
                    state.samples[episode] = as_frames(frames, "rollout").detach().float().cpu()
            del batch, reference, counterfactual  # before the next batch is built: memory stays one batch deep
            state.tick()
        return kept

    def _reset_passes(self, chunks: tuple[Tensor, ...], kept: list[Tensor], state: _RunState) -> None:
        """Pass 2 over a window's batches, in reverse order, each against its kept first-pass reference rollout."""
        for chunk, first in zip(reversed(chunks), reversed(kept), strict=True):
            batch = next(self.probe_set.batches(len(chunk), chunk, state.device))
            seeds = self.probe_set.seeds[batch.index.cpu()]
            second = self._roll(state, batch.context, batch.actions[:, 0], seeds)
            real = batch.targets[:, :, 0] if self.probe_set.num_takes > 1 else batch.targets[:, 0]
            state.scorecard.update_reset(first.to(state.device), second, real, episode_index=batch.index)
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

    def _first_pass(self, batch: ProbeBatch, state: _RunState) -> tuple[Tensor, Tensor]:
        """Reference (B, T, ...) and counterfactual (B, K, T, ...) rollouts of a batch, scored."""
        seeds = self.probe_set.seeds[batch.index.cpu()]
        k = self.probe_set.num_branches - 1
        # made before the reference call: whatever that call does to its context, no other call sees (no extra copy)
        branch_context = batch.context.repeat_interleave(k, dim=0)
        reference = self._roll(state, batch.context, batch.actions[:, 0], seeds)
        counterfactual = self._roll(
            state, branch_context, batch.actions[:, 1:].flatten(0, 1), seeds.repeat_interleave(k)
        ).unflatten(0, (len(batch), k))
        task_pred, task_real, groups = self._task(reference, counterfactual, batch)
        # the branches go in apart: the scorecard stacks them a few episodes at a time, so the batch is never copied
        state.scorecard.update(
            (reference, counterfactual),
            batch.targets,
            masks=batch.masks,
            visible=batch.visible,
            task_pred=task_pred,
            task_real=task_real,
            groups=groups,
            episode_index=batch.index,
        )
        return reference, counterfactual

    def _task(
        self, reference: Tensor, counterfactual: Tensor, batch: ProbeBatch
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        if self.task_fn is None or batch.outcomes is None:
            return None, None, None
        if not self._per_branch_outcomes:
            # a copy for the judge: the scorecard and the reset pass read these frames after it
            return _judge(self.task_fn, reference.clone(), len(batch)), batch.outcomes, batch.groups
        branches = counterfactual.shape[1] + 1
        # a new tensor, the judge's alone
        frames = torch.cat([reference.unsqueeze(1), counterfactual], dim=1).flatten(0, 1)
        judged = _judge(self.task_fn, frames, len(batch) * branches)
        if self.task_mode == "decision":
            return judged.view(len(batch), branches), batch.outcomes, None
        groups = None if batch.groups is None else batch.groups.repeat_interleave(branches)
        # one row per (episode, branch); with takes, the takes stay in the last dimension
        real = batch.outcomes.flatten() if batch.outcomes.ndim == 2 else batch.outcomes.transpose(1, 2).flatten(0, 1)
        return judged, real, groups


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
