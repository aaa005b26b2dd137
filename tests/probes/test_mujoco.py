"""MuJoCo robots: headless Pusher, exact segmentation masks, the goal judge, bad body names."""

import functools

import numpy as np
import pytest
import torch

from simgate_tracking import evaluate
from simgate_tracking.probes import EnvironmentReplay, build_probe_set
from simgate_tracking.probes.mujoco import mujoco_env_fn, mujoco_objects, object_in_goal

pytest.importorskip("mujoco")
PUSHER = mujoco_env_fn("Pusher-v5", width=64, height=64)


def flail(observation, env, rng):
    return rng.uniform(-2, 2, 7).astype(np.float32)


def test_default_bodies_are_the_object_and_goal_not_the_arm_or_floor():
    env = PUSHER()
    env.reset(seed=0)
    frame = env.render()
    masks = mujoco_objects(env, names=["object", "goal", "r_forearm_link"])
    assert set(mujoco_objects(env)) <= {"object", "goal"}
    assert all(mask.shape == frame.shape[:2] and mask.any() for mask in masks.values())
    assert "r_forearm_link" in masks  # a named robot link is segmented too
    env.close()


def test_unknown_body_name_is_named_with_the_known_ones():
    env = PUSHER()
    env.reset(seed=0)
    env.render()
    with pytest.raises(ValueError, match=r"body names of the model.*'object'.*\['cup'\]"):
        mujoco_objects(env, names=["cup"])
    env.close()


def test_object_in_goal_judges_the_state():
    env = PUSHER()
    env.reset(seed=0)
    assert not object_in_goal(env)
    assert object_in_goal(env, radius=10.0)
    env.close()


def test_pusher_probe_set_with_masks_and_goal_outcomes_replays_exactly():
    extractor = functools.partial(mujoco_objects, names=["object", "goal"])
    probe = build_probe_set(
        PUSHER, [0, 1], flail, horizon=4, size=(32, 32), mask_extractor=extractor, success_fn=object_in_goal
    )
    assert probe.masks.shape == (2, 4, 2, 32, 32) and probe.visible.any()
    assert probe.outcomes.dtype == torch.bool
    result = evaluate(EnvironmentReplay(PUSHER), probe)
    assert all(score >= 0.99 for score in result.scores.values()), result.scores
