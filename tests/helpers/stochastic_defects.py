"""The defect suite for stochastic worlds: defects injected into a held-out real take, scored against R probe takes.

A world with R + 1 real takes of every episode is split into a probe set of the first R takes and one held-out
take whose randomness no probe take used. A perfect stochastic model is that held-out take; each defect is what a
world model with that defect would produce instead. Every defect is ``defect(world, strength) -> Model`` with
strength in [0, 1] (0: the held-out take itself), and works on any probe set with object masks: nothing here knows
which environment made the frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from simgate_tracking import GateResult, ProbeSet, SimulatorGate
from simgate_tracking.metrics import SimulatorScorecard

SHIMMER_AMPLITUDE = 0.12
MILD_NOISE_STD = 0.01


@dataclass(frozen=True)
class World:
    """A probe set of R takes and a held-out take of the same episodes."""

    probe: ProbeSet
    held_frames: Tensor  # (N, K+1, T, C, H, W) float
    held_masks: Tensor  # (N, T, M, H, W)
    held_success: Tensor  # (N,) bool
    other_frames: Tensor  # (N, T, C, H, W): the reference branch of yet another take, for unseeded sampling


@dataclass(frozen=True)
class Model:
    frames: Tensor  # (N, K+1, T, C, H, W)
    second: Tensor  # (N, T, C, H, W)
    success: Tensor  # (N,) bool


def split_world(probe: ProbeSet, takes: int) -> World:
    """The first ``takes`` takes as the probe set, take ``takes`` held out, take ``takes + 1`` for another draw."""

    def frames(x: Tensor) -> Tensor:
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()

    assert probe.masks is not None and probe.outcomes is not None
    # success of the reference branch in every take (per-branch outcomes keep branch 0)
    success = probe.outcomes[..., 0] if probe.outcomes.ndim == 3 else probe.outcomes
    kept = ProbeSet(
        context=probe.context,
        actions=probe.actions,
        targets=probe.targets[:, :takes],
        masks=probe.masks[:, :takes],
        visible=None if probe.visible is None else probe.visible[:, :takes],
        outcomes=success[:, :takes],
        seeds=probe.seeds,
        name=probe.name,
    )
    return World(
        probe=kept,
        held_frames=frames(probe.targets[:, takes]),
        held_masks=probe.masks[:, takes],
        held_success=success[:, takes].bool(),
        other_frames=frames(probe.targets[:, takes + 1, 0]),
    )


def _model(world: World, frames: Tensor, second: Tensor | None = None, success: Tensor | None = None) -> Model:
    frames = frames.clamp(0.0, 1.0)
    return Model(
        frames=frames,
        second=frames[:, 0].clone() if second is None else second.clamp(0.0, 1.0),
        success=world.held_success.clone() if success is None else success,
    )


def oracle(world: World, strength: float = 0.0) -> Model:
    return _model(world, world.held_frames.clone())


def ignores_actions(world: World, strength: float) -> Model:
    frames = world.held_frames.clone()
    frames[:, 1:] = torch.lerp(frames[:, 1:], frames[:, :1].expand_as(frames[:, 1:]), strength)
    return _model(world, frames)


def _ring_colour(frames: Tensor, masks: Tensor) -> Tensor:
    """(N, T, M, C) mean colour of a 1-pixel ring around every mask."""
    grown = F.max_pool2d(masks.float().flatten(0, 1), 3, stride=1, padding=1).view(masks.shape) > 0
    ring = (grown & ~masks).float()
    total = torch.einsum("ntmhw,ntchw->ntmc", ring, frames)
    return total / ring.sum(dim=(-2, -1)).clamp_min(1.0).unsqueeze(-1)


def _paint(frames: Tensor, masks: Tensor, colours: Tensor, steps: slice, strength: float) -> Tensor:
    """Reference branch with each object's mask blended towards a colour (N, T, M, C) over ``steps``."""
    out = frames.clone()
    reference = out[:, 0]
    for slot in range(masks.shape[2]):
        m = masks[:, steps, slot].unsqueeze(2).float() * strength  # (N, t, 1, H, W)
        colour = colours[:, steps, slot].unsqueeze(-1).unsqueeze(-1)  # (N, t, C, 1, 1)
        reference[:, steps] = reference[:, steps] * (1 - m) + colour * m
    return out


def objects_vanish(world: World, strength: float) -> Model:
    """From the middle step on, every object fades into the background around it."""
    steps = slice(world.held_frames.shape[2] // 2, None)
    colours = _ring_colour(world.held_frames[:, 0], world.held_masks)
    return _model(world, _paint(world.held_frames, world.held_masks, colours, steps, strength))


def identity_swap(world: World, strength: float) -> Model:
    """From the middle step on, every object wears the look of the next object slot (a cyclic swap)."""
    steps = slice(world.held_frames.shape[2] // 2, None)
    area = world.held_masks.float().sum(dim=(-2, -1)).clamp_min(1.0).unsqueeze(-1)
    own = torch.einsum("ntmhw,ntchw->ntmc", world.held_masks.float(), world.held_frames[:, 0]) / area
    return _model(world, _paint(world.held_frames, world.held_masks, own.roll(1, dims=2), steps, strength))


def background_shimmer(world: World, strength: float) -> Model:
    n, branches, t, c, h, w = world.held_frames.shape
    coarse = torch.randn(n * t, c, 4, 4, generator=torch.Generator().manual_seed(7))
    field = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False).view(n, 1, t, c, h, w)
    outside = ~world.held_masks.any(dim=2).view(n, 1, t, 1, h, w)
    return _model(world, world.held_frames + SHIMMER_AMPLITUDE * strength * field * outside)


def freezes(world: World, strength: float) -> Model:
    t = world.held_frames.shape[2]
    start = round((1 - strength) * (t - 1))
    frames = world.held_frames.clone()
    frames[:, :, start:] = frames[:, :, start : start + 1]
    return _model(world, frames)


def leaks_state(world: World, strength: float) -> Model:
    """The second pass, in reverse order, carries the episode rolled out before it."""
    reference = world.held_frames[:, 0]
    return _model(world, world.held_frames, second=torch.lerp(reference, reference.roll(-1, dims=0), strength))


def unseeded_sampling(world: World, strength: float) -> Model:
    """The second pass draws the world's randomness afresh instead of from the episode's seed."""
    reference = world.held_frames[:, 0]
    return _model(world, world.held_frames, second=torch.lerp(reference, world.other_frames, strength))


def hallucinates_success(world: World, strength: float) -> Model:
    """Success claimed for failed episodes, those that fail in every probe take first."""
    assert world.probe.outcomes is not None
    frequency = world.probe.outcomes.float().mean(dim=1)
    failed = (~world.held_success).nonzero().flatten()
    failed = failed[frequency[failed].argsort(stable=True)]
    success = world.held_success.clone()
    success[failed[: round(strength * len(failed))]] = True
    return _model(world, world.held_frames, success=success)


def mild_noise(world: World, strength: float = 1.0) -> Model:
    noise = torch.randn(world.held_frames.shape, generator=torch.Generator().manual_seed(3))
    return _model(world, world.held_frames + MILD_NOISE_STD * noise)


DEFECTS = {
    "ignores_actions": ("controllability", ignores_actions),
    "objects_vanish": ("object_persistence", objects_vanish),
    "identity_swap": ("object_persistence", identity_swap),
    "background_shimmer": ("temporal_consistency", background_shimmer),
    "freezes": (None, freezes),
    "leaks_state": ("reset_reproducibility", leaks_state),
    "unseeded_sampling": ("reset_reproducibility", unseeded_sampling),
    "hallucinates_success": ("task_validity", hallucinates_success),
}


def scorecard(world: World, model: Model) -> SimulatorScorecard:
    probe = world.probe
    card = SimulatorScorecard(num_takes=probe.num_takes)
    card.update(
        model.frames,
        probe.targets,
        second=model.second,
        masks=probe.masks,
        visible=probe.visible,
        task_pred=model.success,
        task_real=probe.outcomes,
    )
    return card


def judge(world: World, model: Model) -> GateResult:
    card = scorecard(world, model)
    return SimulatorGate().evaluate(card.compute(), real_baseline=card.real_baseline())
