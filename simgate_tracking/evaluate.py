"""The gate without Lightning: one call for a plain PyTorch loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from simgate_tracking.confidence import DEFAULT_LEVEL, check_level, gate_intervals
from simgate_tracking.gate import DEFAULT_THRESHOLD, GateResult, SimulatorGate
from simgate_tracking.metrics import SimulatorScorecard
from simgate_tracking.probe import ProbeSet
from simgate_tracking.rollout import UNIT_RANGE, ProbeRunner, ProgressFn, TaskFn, ValueRangeLike, resolve_rollout_fn
from simgate_tracking.sharding import padded_shard, process_group


def evaluate(
    rollout_fn: Any,
    probe_set: ProbeSet,
    threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
    task_fn: TaskFn | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    value_range: ValueRangeLike = UNIT_RANGE,
    confidence_level: float = DEFAULT_LEVEL,
    distributed: bool = True,
) -> GateResult:
    """Score a world model on a probe set and judge it: the same rollouts and maths as the Lightning callback.

    Inside an initialised ``torch.distributed`` process group of several processes (a custom DDP, FSDP or DeepSpeed
    loop), call it on every rank: each rank scores its shard of the episodes and the scores are synced, as the
    callback does, so every rank gets the single-process result. The shards are padded to one length, so every rank
    makes the same world-model calls with the same shapes: a model with sharded parameters can gather them in its
    forward pass.

    Args:
        rollout_fn: ``rollout(context, actions, generator=None) -> frames``, or a model with a ``rollout`` method
            (an ``nn.Module`` is put in eval mode for the check and restored after).
        probe_set: The probe episodes.
        threshold: One threshold or per-axis thresholds, as :class:`SimulatorGate` takes.
        task_fn: Judges task outcomes on model futures, ``(B, T, C, H, W) -> (B,)``, in [0, 1].
        batch_size: Episodes per world-model call.
        device: Where the probe episodes go; default: the model's first parameter's device, else CPU.
        progress: Called as ``progress(done, total)`` after every world-model batch.
        value_range: The values the model's float frames span, ``(low, high)``, rescaled to [0, 1] before scoring:
            ``(-1, 1)`` for a tanh output, ``(0, 255)`` for pixel values. Frames that leave it by more than 10% of it
            get a warning naming both ranges.
        confidence_level: The level of each axis's confidence interval, a seeded bootstrap over probe episodes
            (:attr:`GateResult.intervals`), which :attr:`GateResult.verdict` judges.
        distributed: Shard and sync inside a process group; False: this process scores every episode on its own.

    Returns:
        The gate's verdict, with frame quality and delta-PSNR in ``extras``.

    Example:
        >>> import torch
        >>> from simgate_tracking import ProbeSet, evaluate
        >>> real = torch.rand(4, 2, 5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> probe = ProbeSet(context=real[:, 0, :1], actions=torch.randn(4, 2, 5, 2), targets=real)
        >>> def replay(context, actions, generator=None):  # reality itself: looks up each episode's branch
        ...     hits = [((probe.actions == a).all(-1).all(-1)).nonzero()[0] for a in actions]
        ...     return torch.stack([probe.targets[n, k] for n, k in hits])
        >>> result = evaluate(replay, probe)
        >>> result.passed, result.weakest_axis
        (True, 'controllability')
    """
    run = resolve_rollout_fn(rollout_fn)
    module = rollout_fn if isinstance(rollout_fn, nn.Module) else getattr(run, "__self__", None)
    if device is None:
        params = list(module.parameters()) if isinstance(module, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    device = _usable_device(device)
    if not isinstance(distributed, bool):
        raise ValueError(f"Expected argument `distributed` to be a bool but got {distributed!r}")
    runner = ProbeRunner(probe_set, batch_size=batch_size, task_fn=task_fn, value_range=value_range)
    level = check_level(confidence_level, "confidence_level")
    group = process_group() if distributed else None
    shard = None if group is None else padded_shard(len(probe_set), *group)
    # outside a process group, or opted out, the scores are this process's own: nothing to sync
    scorecard = runner.make_scorecard(episode_scores=True, sync_on_compute=group is not None).to(device)
    was_training = module.training if isinstance(module, nn.Module) else False
    try:
        if isinstance(module, nn.Module):
            module.eval()
        with torch.no_grad():
            if shard is None:
                runner.run(run, scorecard, device=device, progress=progress)
            else:
                runner.run(run, scorecard, device, shard.indices, progress, padding=shard.num_padding)
    finally:
        if isinstance(module, nn.Module):
            module.train(was_training)
    return judge_scorecard(SimulatorGate(threshold), scorecard, {}, level)


def judge_scorecard(
    gate: SimulatorGate, scorecard: SimulatorScorecard, extra_scores: Mapping[str, float], level: float
) -> GateResult:
    """The gate's verdict on a scorecard's scores (plus ``extra_scores``), with every axis's confidence interval.

    The intervals are a seeded bootstrap over the episodes, gathered in episode order: the same on every rank.
    """
    intervals, reality = gate_intervals(
        scorecard.episode_statistics(), level, statistic_fns=scorecard.interval_statistics()
    )
    scores = {**scorecard.compute(), **extra_scores}
    return gate.evaluate(scores, scorecard.real_baseline(), intervals, level, real_baseline_intervals=reality)


def _usable_device(device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device`` this process can put tensors on, else a ``ValueError`` naming it."""
    try:
        device = torch.device(device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, TypeError) as err:
        raise ValueError(
            f"Expected argument `device` to be a device this process can use but got {device!r}: {err}"
        ) from None
    return device
