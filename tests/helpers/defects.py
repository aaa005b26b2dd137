"""Known defects injected into a scene's real futures, and the user's way of judging the result.

Every defect is ``defect(scene, strength) -> Predictions``: what a world model with that defect would produce on
the scene's probe episodes, at a strength in [0, 1] (0 = the oracle). Random draws are seeded, so a defect is a
fixed function of (scene, strength).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from simgate_tracking import GateResult, SimulatorGate
from simgate_tracking.metrics import (
    Controllability,
    ObjectPersistence,
    ResetReproducibility,
    SimulatorScorecard,
    TaskValidity,
    TemporalConsistency,
)
from tests.helpers.scenes import OBJECT_SIZE, OCCLUDER_WIDTH, Scene, judge_returns, judge_success, render

SHIMMER_AMPLITUDE = 0.12  # background flicker at full strength
SEED_NOISE_AMPLITUDE = 0.08  # per-rollout lighting change at full strength
HEAVY_NOISE_STD = 0.25
MILD_NOISE_STD = 0.01
SLIGHT_BLUR_SIGMA = 0.5


@dataclass(frozen=True)
class Predictions:
    """A model's output on a scene: first pass of every branch, second pass of the reference, task verdicts."""

    frames: Tensor  # (N, K+1, T, 3, S, S)
    second: Tensor  # (N, T, 3, S, S), episodes in probe order
    success: Tensor  # (N,) bool, judged on the reference branch
    returns: Tensor  # (N,) float, judged on the reference branch


def predictions(frames: Tensor, second: Tensor | None = None) -> Predictions:
    """Predictions whose second pass repeats the first and whose task verdicts are judged on the frames."""
    frames = frames.clamp(0.0, 1.0)
    second = frames[:, 0].clone() if second is None else second.clamp(0.0, 1.0)
    return Predictions(frames, second, judge_success(frames[:, 0]), judge_returns(frames[:, 0]))


def _noise(shape: tuple[int, ...], seed: int) -> Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _smooth_noise(n: int, count: int, size: int, seed: int) -> Tensor:
    """Spatially smooth fields (n, count, 3, S, S) of unit scale: coarse noise upsampled."""
    coarse = _noise((n * count, 3, 4, 4), seed)
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return fine.view(n, count, 3, size, size)


def oracle(scene: Scene, strength: float = 0.0) -> Predictions:
    """The model is reality."""
    return predictions(scene.targets.clone())


def ignores_actions(scene: Scene, strength: float) -> Predictions:
    """Every branch drifts towards the reference branch's future: the actions stop mattering."""
    y = scene.targets
    return predictions((1 - strength) * y + strength * y[:, :1])


def wrong_branch(scene: Scene, strength: float) -> Predictions:
    """Counterfactual branches answer with another counterfactual branch's future (needs K >= 2)."""
    y = scene.targets
    swapped = torch.cat([y[:, :1], y[:, 1:].roll(1, dims=1)], dim=1)
    return predictions((1 - strength) * y + strength * swapped)


def background_shimmer(scene: Scene, strength: float) -> Predictions:
    """The background flickers from step to step (same flicker in every branch and pass: a seeded model)."""
    y = scene.targets
    n, _, t, _, s, _ = y.shape
    is_background = (y == scene.background[:, None, None]).all(dim=3, keepdim=True)
    flicker = SHIMMER_AMPLITUDE * strength * _smooth_noise(n, t, s, seed=1).unsqueeze(1)
    return predictions(y + flicker * is_background)


def _first_occluded_step(scene: Scene) -> Tensor:
    """(N,) index on the full timeline where object 0 first passes behind the occluder."""
    x = scene.object_xy[:, :, 0, 0]
    ox = scene.occluder_x.unsqueeze(1)
    behind = (x < ox + OCCLUDER_WIDTH) & (x + OBJECT_SIZE > ox)
    return behind.float().argmax(dim=1)


def _rerender(scene: Scene, colours: Tensor | None = None, alpha: Tensor | None = None) -> Tensor:
    full = render(
        scene.background,
        scene.occluder_x,
        scene.agent_xy,
        scene.object_xy,
        scene.colours if colours is None else colours,
        alpha,
    )
    return full[:, :, scene.config.context_steps :]


def vanishes_after_occlusion(scene: Scene, strength: float) -> Predictions:
    """The seed's cyclist: object 0 fades out once it passes behind the occluder and never comes back."""
    n, steps, m = scene.object_xy.shape[:3]
    alpha = torch.ones(n, steps, m)
    after = torch.arange(steps).unsqueeze(0) >= _first_occluded_step(scene).unsqueeze(1)
    alpha[:, :, 0] = torch.where(after, 1 - strength, 1.0)
    return predictions(_rerender(scene, alpha=alpha))


def identity_swap(scene: Scene, strength: float) -> Predictions:
    """Objects 0 and 1 trade appearance from the middle of the horizon on."""
    n, steps, m = scene.object_xy.shape[:3]
    colours = scene.colours.unsqueeze(1).repeat(1, steps, 1, 1)
    later = slice(scene.config.context_steps + scene.config.steps // 2, None)
    c0, c1 = scene.colours[:, 0].unsqueeze(1), scene.colours[:, 1].unsqueeze(1)
    colours[:, later, 0] = (1 - strength) * c0 + strength * c1
    colours[:, later, 1] = (1 - strength) * c1 + strength * c0
    return predictions(_rerender(scene, colours=colours))


def leaks_previous_episode(scene: Scene, strength: float) -> Predictions:
    """The second pass (episodes in reverse order) blends in the episode rolled out just before it."""
    reference = scene.targets[:, 0]
    previous = torch.cat([reference[1:], reference[-1:]])  # reverse order: N-1 runs first, after itself
    return predictions(scene.targets.clone(), second=(1 - strength) * reference + strength * previous)


def ignores_seed(scene: Scene, strength: float) -> Predictions:
    """A stochastic model whose sample (a global lighting change) differs between the two passes."""
    y = scene.targets
    n, _, _, _, s, _ = y.shape
    first = SEED_NOISE_AMPLITUDE * strength * _smooth_noise(n, 1, s, seed=2)
    second = SEED_NOISE_AMPLITUDE * strength * _smooth_noise(n, 1, s, seed=3)
    return predictions(y + first.unsqueeze(1), second=y[:, 0] + second)


def hallucinates_success(scene: Scene, strength: float) -> Predictions:
    """The task judged on model futures reports success in a growing share of the episodes that really fail."""
    out = oracle(scene)
    failed = (~scene.success).nonzero().flatten()
    flipped = failed[: round(strength * len(failed))]
    success = scene.success.clone()
    success[flipped] = True
    return Predictions(out.frames, out.second, success, out.returns)


def reverses_policy_ranking(scene: Scene, strength: float) -> Predictions:
    """Returns judged on model futures drift towards those of the mirror policy: the ranking turns over."""
    out = oracle(scene)
    groups = scene.config.groups
    means = torch.stack([scene.returns[scene.groups == g].mean() for g in range(groups)])
    mirror = means[groups - 1 - scene.groups]
    return Predictions(out.frames, out.second, out.success, (1 - strength) * scene.returns + strength * mirror)


def freezes(scene: Scene, strength: float) -> Predictions:
    """The rollout stops moving: from step (1 - strength) * (T - 1) on, every frame repeats that step."""
    y = scene.targets
    frozen_from = round((1 - strength) * (y.shape[2] - 1))
    steps = torch.arange(y.shape[2]).clamp(max=frozen_from)
    return predictions(y[:, :, steps])


def heavy_noise(scene: Scene, strength: float) -> Predictions:
    """Independent per-pixel noise in every branch, step and pass."""
    y = scene.targets
    std = HEAVY_NOISE_STD * strength
    return predictions(y + std * _noise(tuple(y.shape), 4), second=y[:, 0] + std * _noise(tuple(y[:, 0].shape), 5))


def mild_noise(scene: Scene, strength: float = 1.0) -> Predictions:
    """Per-pixel noise of std 0.01, independent in every branch, step and pass: must not alarm."""
    y = scene.targets
    std = MILD_NOISE_STD * strength
    return predictions(y + std * _noise(tuple(y.shape), 6), second=y[:, 0] + std * _noise(tuple(y[:, 0].shape), 7))


def blur(frames: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of every frame (..., 3, S, S) with a 3x3 kernel of std ``sigma`` pixels."""
    taps = torch.tensor([math.exp(-1 / (2 * sigma**2)), 1.0, math.exp(-1 / (2 * sigma**2))])
    kernel = torch.outer(taps, taps) / taps.sum() ** 2
    flat = frames.reshape(-1, 1, *frames.shape[-2:])
    out = F.conv2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), kernel.view(1, 1, 3, 3))
    return out.view_as(frames)


def slight_blur(scene: Scene, strength: float = 1.0) -> Predictions:
    """Every frame blurred with a Gaussian of std 0.5 px: must not alarm."""
    return predictions(blur(scene.targets, SLIGHT_BLUR_SIGMA * max(strength, 1e-3)))


Defect = Callable[[Scene, float], Predictions]
SINGLE_AXIS: dict[str, tuple[str, Defect]] = {
    "ignores_actions": ("controllability", ignores_actions),
    "wrong_branch": ("controllability", wrong_branch),
    "background_shimmer": ("temporal_consistency", background_shimmer),
    "vanishes_after_occlusion": ("object_persistence", vanishes_after_occlusion),
    "identity_swap": ("object_persistence", identity_swap),
    "leaks_previous_episode": ("reset_reproducibility", leaks_previous_episode),
    "ignores_seed": ("reset_reproducibility", ignores_seed),
    "hallucinates_success": ("task_validity", hallucinates_success),
    "reverses_policy_ranking": ("task_validity", reverses_policy_ranking),
}
MULTI_AXIS: dict[str, Defect] = {"freezes": freezes, "heavy_noise": heavy_noise}
MILD: dict[str, Defect] = {"mild_noise": mild_noise, "slight_blur": slight_blur}


def task_for(defect: str) -> str:
    """The task mode a defect is judged in: returns and policy ranking, or success agreement."""
    return "returns" if defect == "reverses_policy_ranking" else "success"


def score(scene: Scene, preds: Predictions, task: str = "success") -> dict[str, float]:
    """The five axes, each from its own metric class fed in two batches, as a streaming user would."""
    halves = [slice(0, len(scene.seeds) // 2), slice(len(scene.seeds) // 2, None)]
    ranking = task == "returns"
    metrics = {
        "controllability": Controllability(),
        "temporal_consistency": TemporalConsistency(),
        "object_persistence": ObjectPersistence(),
        "reset_reproducibility": ResetReproducibility(),
        "task_validity": TaskValidity(mode="ranking" if ranking else "agreement", num_groups=scene.config.groups),
    }
    for h in halves:
        frames, real = preds.frames[h], scene.targets[h]
        metrics["controllability"].update(frames, real)
        metrics["temporal_consistency"].update(frames[:, 0], real[:, 0])
        metrics["object_persistence"].update(frames[:, 0], real[:, 0], scene.masks[h], scene.visible[h])
        metrics["reset_reproducibility"].update(frames[:, 0], preds.second[h], real[:, 0])
        if ranking:
            metrics["task_validity"].update(preds.returns[h], scene.returns[h], scene.groups[h])
        else:
            metrics["task_validity"].update(preds.success[h], scene.success[h])
    return {name: float(metric.compute()) for name, metric in metrics.items()}


def scorecard(scene: Scene, preds: Predictions, task: str = "success") -> dict[str, float]:
    """Every score of one :class:`SimulatorScorecard` update: the five axes plus PSNR, SSIM and delta-PSNR."""
    ranking = task == "returns"
    card = SimulatorScorecard(task_mode="ranking" if ranking else "agreement", num_groups=scene.config.groups)
    card.update(
        preds.frames,
        scene.targets,
        second=preds.second,
        masks=scene.masks,
        visible=scene.visible,
        task_pred=preds.returns if ranking else preds.success,
        task_real=scene.returns if ranking else scene.success,
        groups=scene.groups if ranking else None,
    )
    return {name: float(value) for name, value in card.compute().items()}


def judge(scene: Scene, preds: Predictions, task: str = "success") -> GateResult:
    """The gate's verdict on ``preds``, with frame quality beside it, exactly as a user would ask for it."""
    return SimulatorGate().evaluate(scorecard(scene, preds, task))
