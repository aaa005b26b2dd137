"""Gate checks for dashboard tests, built from real scorecards on small synthetic rollouts.

Reality: a bright square object moving over a dim random background, 3 action branches that push it differently.
The "model" replays reality with a little noise; at a chosen check the object vanishes halfway through every
rollout (the seed's occluded cyclist), so object persistence fails the gate and alerts fire.
"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking import AXES, ProbeSet, SimulatorGate
from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.metrics import SimulatorScorecard
from simgate_tracking.report import GateCheck, RolloutSamples

EPISODES, BRANCHES, STEPS, SIZE, SQUARE = 4, 3, 6, 16, 5
SAMPLE_EPISODES = [0, 2]


def make_world(seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Real futures (N, K+1, T, 3, H, W), object masks (N, T, 1, H, W) and a task outcome per episode."""
    g = torch.Generator().manual_seed(seed)
    background = 0.3 * torch.rand(EPISODES, 1, 1, 3, SIZE, SIZE, generator=g)
    frames = background.expand(EPISODES, BRANCHES, STEPS, 3, SIZE, SIZE).clone()
    masks = torch.zeros(EPISODES, BRANCHES, STEPS, 1, SIZE, SIZE, dtype=torch.bool)
    for k in range(BRANCHES):
        for t in range(STEPS):
            x = min(1 + t * (k + 1) // 2, SIZE - SQUARE)  # branch k moves the object k+1 times as fast
            masks[:, k, t, 0, 5 : 5 + SQUARE, x : x + SQUARE] = True
    frames = torch.where(masks.expand_as(frames), torch.tensor(0.9), frames)
    outcomes = torch.tensor([1.0, 0.0, 1.0, 0.0])
    return frames, masks[:, 0], outcomes


def model_rollouts(real: Tensor, masks: Tensor, vanish: bool, seed: int) -> Tensor:
    """Reality plus noise; with ``vanish`` the object is painted over with background from mid-rollout on."""
    g = torch.Generator().manual_seed(seed)
    preds = (real + 0.01 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    if vanish:
        hidden = torch.zeros_like(masks)
        hidden[:, STEPS // 2 :] = masks[:, STEPS // 2 :]
        where = hidden.unsqueeze(1).expand(-1, BRANCHES, -1, 3, -1, -1)
        preds = torch.where(where, real[:, :, :1, :, :1, :1].expand_as(real), preds)
    return preds


def make_checks(
    steps: tuple[int, ...] = (100, 200, 300), vanish_at: tuple[int, ...] = (300,), policy: AlertPolicy | None = None
) -> list[GateCheck]:
    """One gate check per step, scored by a real scorecard and judged by a real gate and alert policy."""
    real, masks, outcomes = make_world()
    probe = ProbeSet(
        context=real[:, 0, :1],
        actions=torch.arange(BRANCHES, dtype=torch.float32).view(1, BRANCHES, 1, 1).expand(EPISODES, -1, STEPS, 1),
        targets=real,
        masks=masks,
        visible=masks.flatten(-2).any(-1),
        outcomes=outcomes,
        name="squares",
    )
    policy = policy or AlertPolicy()
    checks = []
    for i, step in enumerate(steps):
        preds = model_rollouts(real, masks, vanish=step in vanish_at, seed=i)
        card = SimulatorScorecard(episode_scores=True)
        card.update(
            preds,
            real,
            second=preds[:, 0],
            masks=probe.masks,
            visible=probe.visible,
            task_pred=outcomes,
            task_real=outcomes,
            episode_index=torch.arange(EPISODES),
        )
        result = SimulatorGate().evaluate(card.compute())
        pick = torch.tensor(SAMPLE_EPISODES)
        checks.append(
            GateCheck(
                result=result,
                step=step,
                epoch=i,
                manifest_hash=probe.manifest_hash,
                probe_name=probe.name,
                episode_scores={name: values.tolist() for name, values in card.episode_scores().items()},
                alerts=tuple(policy.update(result, step)),
                samples=RolloutSamples(SAMPLE_EPISODES, real[pick], preds[pick], masks[pick]),
            )
        )
    assert set(checks[0].result.scores) == set(AXES)
    return checks
