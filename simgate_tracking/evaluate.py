"""The gate without Lightning: one call for a plain PyTorch loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from simgate_tracking.gate import DEFAULT_THRESHOLD, GateResult, SimulatorGate
from simgate_tracking.probe import ProbeSet
from simgate_tracking.rollout import UNIT_RANGE, ProbeRunner, ProgressFn, TaskFn, ValueRangeLike, resolve_rollout_fn


def evaluate(
    rollout_fn: Any,
    probe_set: ProbeSet,
    threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
    task_fn: TaskFn | None = None,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    value_range: ValueRangeLike = UNIT_RANGE,
) -> GateResult:
    """Score a world model on a probe set and judge it: the same rollouts and maths as the Lightning callback.

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
    runner = ProbeRunner(probe_set, batch_size=batch_size, task_fn=task_fn, value_range=value_range)
    scorecard = runner.make_scorecard().to(device)
    was_training = module.training if isinstance(module, nn.Module) else False
    try:
        if isinstance(module, nn.Module):
            module.eval()
        with torch.no_grad():
            runner.run(run, scorecard, device=device, progress=progress)
    finally:
        if isinstance(module, nn.Module):
            module.train(was_training)
    return SimulatorGate(threshold).evaluate(scorecard.compute(), real_baseline=scorecard.real_baseline())
