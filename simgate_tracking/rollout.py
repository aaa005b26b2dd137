"""Probe set -> rollouts -> scorecard: the one code path behind the callback and :func:`evaluate`."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from simgate_tracking.functional._checks import as_frames
from simgate_tracking.functional.task_validity import TaskMode
from simgate_tracking.metrics.scorecard import SimulatorScorecard
from simgate_tracking.probe import ProbeBatch, ProbeSet
from simgate_tracking.report import RolloutSamples

TaskFn = Callable[[Tensor], Tensor]
ProgressFn = Callable[[int, int], None]


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


def rollout_branch(
    rollout_fn: RolloutFn, context: Tensor, actions: Tensor, seeds: Tensor, horizon_frames: tuple[int, ...]
) -> Tensor:
    """One call of the world model for a batch: per-episode seeded generators, global RNG seeded from the batch.

    Args:
        rollout_fn: The world model's rollout.
        context: (B, T0, C, H, W).
        actions: (B, T, A).
        seeds: (B,) CPU int64 seeds.
        horizon_frames: The expected (T, C, H, W) of each rollout.
    """
    torch.manual_seed(_batch_seed(seeds))
    frames = rollout_fn(context, actions, generator=_generators(seeds, context.device))
    return _check_frames(frames, (context.shape[0], *horizon_frames), context.device, "rollout(context, actions)")


def _judge(task_fn: TaskFn, frames: Tensor, count: int) -> Tensor:
    verdict = task_fn(frames)
    if not isinstance(verdict, Tensor) or tuple(verdict.shape) != (count,):
        got = tuple(verdict.shape) if isinstance(verdict, Tensor) else type(verdict).__name__
        raise RolloutError(f"Expected task_fn(frames) to return outcomes of shape (B,) = ({count},) but got {got}")
    return verdict


class ProbeRunner:
    """Roll a world model out on a probe set and feed a :class:`SimulatorScorecard`.

    Pass 1 visits the batches in order: the reference branch (one call per batch), then every counterfactual
    branch (one call per batch, B*K rows). Pass 2 rolls the reference branch out again with the same seeds,
    visiting the same batches in reverse order, so that state carried from one rollout to the next shows while
    an honestly seeded model reproduces exactly.

    Args:
        probe_set: The probe episodes.
        batch_size: Episodes per world-model call.
        task_fn: Judges task outcomes on model futures, ``(B, T, C, H, W) -> (B,)``; used when the probe set has
            outcomes.
    """

    def __init__(self, probe_set: ProbeSet, batch_size: int = 8, task_fn: TaskFn | None = None) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"Expected argument `batch_size` to be a positive int but got {batch_size!r}")
        self.probe_set = probe_set
        self.batch_size = batch_size
        self.task_fn = task_fn

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

        RNG states are restored afterwards. Call under ``torch.no_grad()`` and with the model in eval mode.

        Returns:
            CPU copies of every branch's rollout for the episodes of ``sample_episodes`` among ``indices`` (for
            dashboards), or None when there are none.
        """
        device = torch.device(device)
        # batches are built when their turn comes: a list of them all would hold every probe episode on the device
        order = torch.arange(len(self.probe_set)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        chunks = order.split(self.batch_size)
        total, done = 2 * len(chunks), 0
        kept: list[Tensor] = []
        samples: dict[int, Tensor] = {}
        with preserved_rng([device]):
            for chunk in chunks:
                batch = next(self.probe_set.batches(len(chunk), chunk, device))
                reference, counterfactual = self._first_pass(rollout_fn, batch, scorecard)
                # pass 1's reference rollouts wait for pass 2 off the accelerator, so memory stays one batch deep
                kept.append(reference if reference.device.type == "cpu" else reference.to("cpu", non_blocking=True))
                for row, episode in enumerate(batch.index.tolist()):
                    if episode in sample_episodes:
                        frames = torch.cat([reference[row : row + 1], counterfactual[row]])
                        samples[episode] = as_frames(frames, "rollout").detach().float().cpu()
                del batch, reference, counterfactual  # before the next batch is built: memory stays one batch deep
                done += 1
                if progress is not None:
                    progress(done, total)
            for chunk, first in zip(reversed(chunks), reversed(kept), strict=True):
                batch = next(self.probe_set.batches(len(chunk), chunk, device))
                seeds = self.probe_set.seeds[batch.index.cpu()]
                second = rollout_branch(rollout_fn, batch.context, batch.actions[:, 0], seeds, self._frames_shape)
                real = batch.targets[:, :, 0] if self.probe_set.num_takes > 1 else batch.targets[:, 0]
                scorecard.update_reset(first.to(device), second, real, episode_index=batch.index)
                del batch, second
                done += 1
                if progress is not None:
                    progress(done, total)
        return self._samples(samples)

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

    @property
    def _frames_shape(self) -> tuple[int, ...]:
        return (self.probe_set.horizon, *self.probe_set.frame_shape)

    def _first_pass(
        self, rollout_fn: RolloutFn, batch: ProbeBatch, scorecard: SimulatorScorecard
    ) -> tuple[Tensor, Tensor]:
        """Reference (B, T, ...) and counterfactual (B, K, T, ...) rollouts of a batch, scored."""
        seeds = self.probe_set.seeds[batch.index.cpu()]
        k = self.probe_set.num_branches - 1
        reference = rollout_branch(rollout_fn, batch.context, batch.actions[:, 0], seeds, self._frames_shape)
        counterfactual = rollout_branch(
            rollout_fn,
            batch.context.repeat_interleave(k, dim=0),
            batch.actions[:, 1:].flatten(0, 1),
            seeds.repeat_interleave(k),
            self._frames_shape,
        ).unflatten(0, (len(batch), k))
        task_pred, task_real, groups = self._task(reference, counterfactual, batch)
        # the branches go in apart: the scorecard stacks them a few episodes at a time, so the batch is never copied
        scorecard.update(
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
            return _judge(self.task_fn, reference, len(batch)), batch.outcomes, batch.groups
        branches = counterfactual.shape[1] + 1
        frames = torch.cat([reference.unsqueeze(1), counterfactual], dim=1).flatten(0, 1)
        judged = _judge(self.task_fn, frames, len(batch) * branches)
        if self.task_mode == "decision":
            return judged.view(len(batch), branches), batch.outcomes, None
        groups = None if batch.groups is None else batch.groups.repeat_interleave(branches)
        # one row per (episode, branch); with takes, the takes stay in the last dimension
        real = batch.outcomes.flatten() if batch.outcomes.ndim == 2 else batch.outcomes.transpose(1, 2).flatten(0, 1)
        return judged, real, groups
