"""highway-env vehicles: masks through the viewer transform, the crash outcome, the seed's dropped-vehicle case."""

import pytest
import torch

from simgate_tracking import evaluate
from simgate_tracking.probes import build_probe_set
from simgate_tracking.probes.highway import highway_env_fn, highway_objects, no_crash

pytest.importorskip("highway_env")
HIGHWAY = highway_env_fn(screen_width=160, screen_height=80, vehicles_count=20)


def idle(observation, env, rng):
    return 1


def test_vehicle_masks_cover_the_vehicles_own_colour():
    env = HIGHWAY()
    env.reset(seed=0)
    frame = env.render()
    masks = highway_objects(env)
    ego = env.unwrapped.vehicle
    assert ego in masks and masks[ego].sum() > 10
    r, g, b = frame[masks[ego]].mean(axis=0)
    assert g > 150 and r < 100  # the ego vehicle is drawn green
    env.close()


def test_dropping_a_vehicle_for_two_seconds_fails_persistence_while_psnr_stays_high():
    probe = build_probe_set(
        HIGHWAY, [0, 1], idle, horizon=4, size=(40, 80), mask_extractor=highway_objects, success_fn=no_crash
    )
    assert probe.outcomes.dtype == torch.bool
    dropped = probe.targets[:, 0].clone()
    frequency = 1  # highway-fast-v0 acts once per simulated second: two steps are two seconds
    for i in range(len(probe)):
        slot = int(probe.visible[i, -1].float().argmax())  # a vehicle seen at the end
        for t in range(probe.targets.shape[2] - 2 * frequency, probe.targets.shape[2]):
            mask = probe.masks[i, t, slot]
            road = dropped[i, t][:, ~mask].float().median(dim=1).values.round().to(torch.uint8)
            dropped[i, t][:, mask] = road[:, None]
    by_seed = {int(s): i for i, s in enumerate(probe.seeds)}

    def rollout(context, actions, generator=None):
        rows = [by_seed[int(g.initial_seed())] for g in generator]
        matches = [int((probe.actions[r, 0] == a.cpu()).all()) for r, a in zip(rows, actions, strict=True)]
        return torch.stack([dropped[r] if m else probe.targets[r, 1] for r, m in zip(rows, matches, strict=True)])

    result = evaluate(rollout, probe)
    assert result.scores["object_persistence"] < 0.5, result.scores
    assert result.extras["psnr"] > 25.0, result.extras
