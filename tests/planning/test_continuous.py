"""Continuous-action planning: the Gaussian CEM planner, Box environments saved and restored, the probe on Pusher."""

import functools

import numpy as np
import pytest
import torch

from simgate_tracking.planning import (
    PUSHER_CAMERA,
    ContinuousPlanningProbe,
    GaussianPlanner,
    GymBoxPlanningEnvironment,
    PlanningProbeLike,
    pusher_goal_progress,
)

TARGET = torch.tensor([0.5, -0.5])


def near_target(actions):
    """Task values: minus the squared distance of every action to TARGET; no frames to show."""
    values = -(actions - TARGET).square().sum(dim=(1, 2))
    return values, torch.zeros(len(actions), actions.shape[1], 1, 1, 1)


def test_cross_entropy_moves_the_gaussians_to_the_best_sequences():
    planner = GaussianPlanner([-1.0, -1.0], [1.0, 1.0], horizon=4, candidates=64, iterations=1, elites=8)
    shooting = planner.plan(near_target, torch.Generator().manual_seed(0))
    planner.iterations = 8
    refitted = planner.plan(near_target, torch.Generator().manual_seed(0))
    assert refitted.actions.shape == (4, 2)
    assert refitted.value > shooting.value  # refitting finds better sequences than random shooting alone
    assert (refitted.actions - TARGET).abs().max() < 0.1 < (shooting.actions - TARGET).abs().max()


def test_candidates_stay_in_the_action_box():
    planner = GaussianPlanner([-1.0, 0.0], [1.0, 0.5], horizon=3, candidates=16, iterations=3)
    seen = []

    def far_outside(actions):
        seen.append(actions.clone())
        return actions.sum(dim=(1, 2)), torch.zeros(len(actions), 3, 1, 1, 1)

    plan = planner.plan(far_outside, torch.Generator().manual_seed(1))
    everything = torch.cat(seen)
    assert everything[..., 0].min() >= -1 and everything[..., 0].max() <= 1
    assert everything[..., 1].min() >= 0 and everything[..., 1].max() <= 0.5
    assert plan.actions[:, 1].min() > 0.4  # the task wants the upper bound, and gets close to it


def test_warm_start_survives_ties_and_nan_never_wins():
    planner = GaussianPlanner([-1.0], [1.0], horizon=2, candidates=8, iterations=2)
    warm = torch.tensor([[0.25], [-0.75]])

    def ties(actions):
        values = torch.zeros(len(actions))
        values[1:] = float("nan")
        return values, torch.zeros(len(actions), 2, 1, 1, 1)

    plan = planner.plan(ties, torch.Generator().manual_seed(0), warm)
    assert torch.equal(plan.actions, warm) and plan.value == 0.0


def test_the_same_generator_gives_the_same_plan():
    planner = GaussianPlanner([-1.0, -1.0], [1.0, 1.0], horizon=3, candidates=8, iterations=2)
    first = planner.plan(near_target, torch.Generator().manual_seed(3))
    second = planner.plan(near_target, torch.Generator().manual_seed(3))
    other = planner.plan(near_target, torch.Generator().manual_seed(4))
    assert torch.equal(first.actions, second.actions) and not torch.equal(first.actions, other.actions)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("low", [1.0, 0.0], r"`low` and `high`.*low < high.*low=\[1.0, 0.0\], high=\[1.0, 1.0\]"),
        ("high", [1.0], r"`low` and `high`.*one length"),
        ("horizon", 0, r"`horizon` to be an int >= 1 but got 0"),
        ("candidates", 1, r"`candidates` to be an int >= 2 but got 1"),
        ("init_std", 0.0, r"`init_std` to be a float in \(0, 2\] but got 0.0"),
        ("min_std", 2.0, r"`min_std` to be a float in \[0, init_std=1.0\] but got 2.0"),
        ("momentum", 1.0, r"`momentum` to be a float in \[0, 1\) but got 1.0"),
    ],
)
def test_bad_planner_arguments_are_named(option, value, message):
    settings = {"low": [-1.0, -1.0], "high": [1.0, 1.0], option: value}
    with pytest.raises(ValueError, match=message):
        GaussianPlanner(**settings)


# ---------------------------------------------------------------------------------------------------- Pusher
def _pusher(make):
    env = make()
    env.unwrapped.model.light_castshadow[:] = 0  # software GL: shadows cost five times the frame
    return env


@pytest.fixture(scope="module")
def pusher():
    pytest.importorskip("mujoco")
    from simgate_tracking.probes.mujoco import mujoco_env_fn

    return functools.partial(_pusher, mujoco_env_fn("Pusher-v5", 64, 64, default_camera_config=PUSHER_CAMERA))


class Recorder:
    """Wraps a world model and keeps every action batch it was asked to imagine."""

    def __init__(self, model):
        self.model, self.actions = model, []

    def rollout(self, context, actions, generator=None):
        self.actions.append(actions.clone())
        return self.model.rollout(context, actions, generator)


def test_pusher_replayed_as_the_model_plans_exactly_like_the_real_baseline(pusher):
    from simgate_tracking.probes import EnvironmentReplay
    from simgate_tracking.probes.mujoco import object_in_goal

    env = GymBoxPlanningEnvironment(pusher, size=(48, 48), success_fn=object_in_goal)
    probe = ContinuousPlanningProbe(
        env, pusher_goal_progress, seeds=[0], max_steps=3, horizon=2, candidates=4, iterations=2, context="reset"
    )
    assert isinstance(probe, PlanningProbeLike)  # the callback takes it as it takes the discrete probe
    model = Recorder(EnvironmentReplay(pusher))
    result = probe.run(model.rollout)
    assert result.steps == result.steps_real == [3]
    assert result.success == result.success_real
    assert set(result.scores()) == {"planning_success", "planning_success_real"}  # the baseline in the same report
    assert torch.equal(result.expected, result.happened)  # every frame the planner expected is what happened
    assert result.expected.shape == (1, 3, 3, 48, 48)
    batch = model.actions[-1]  # the last decision: 2 played actions, then the 2 imagined ones
    assert batch.shape == (4, 4, 7) and batch.dtype == torch.float32
    assert batch.abs().max() <= 2.0 and len(torch.unique(batch)) > 8  # torques in the box, not one-hot indices


def test_pusher_state_is_restored_any_number_of_times_with_its_time_limit(pusher):
    env = GymBoxPlanningEnvironment(pusher, size=(32, 32))
    env.reset(seed=0)
    saved = env.save()
    push = np.full(7, 1.5, dtype=np.float32)
    first = torch.stack([env.step(push) for _ in range(3)])
    elapsed = env.env._elapsed_steps if hasattr(env.env, "_elapsed_steps") else None
    for _ in range(2):
        env.restore(saved)
        again = torch.stack([env.step(push) for _ in range(3)])
        assert torch.equal(again, first)
    assert not torch.equal(first[0], first[-1])  # the arm moved: the comparison is not between still frames
    if elapsed is not None:
        assert env.env._elapsed_steps == elapsed


def test_pusher_goal_progress_grows_as_the_object_nears_the_goal_in_real_frames(pusher):
    from simgate_tracking.probes.frames import resize_frame

    env = pusher()
    env.reset(seed=0)
    inner = env.unwrapped
    start, frames = inner.data.qpos.copy(), []
    for fraction in (0.0, 0.5, 1.0):  # slide the object (qpos[-4:-2]) towards the goal (qpos[-2:])
        qpos = start.copy()
        qpos[-4:-2] = start[-4:-2] + fraction * (start[-2:] - start[-4:-2])
        inner.set_state(qpos, np.zeros_like(inner.data.qvel))
        frames.append(resize_frame(env.render(), (48, 48)))
    progress = pusher_goal_progress(torch.stack(frames)[:, None])  # uint8 frames, one step each
    assert progress[0] < progress[1] < progress[2], progress
    assert progress[2] > 0.97  # the object on the goal
    env.close()


def test_bad_environments_are_named():
    import gymnasium as gym

    with pytest.raises(ValueError, match=r"Box action space.*Discrete\(2\)"):
        GymBoxPlanningEnvironment(lambda: gym.make("CartPole-v1", render_mode="rgb_array"), (16, 16))
    with pytest.raises(ValueError, match=r"`environment` to be a BoxPlanningEnvironment.*but got str"):
        ContinuousPlanningProbe("Pusher-v5", pusher_goal_progress, seeds=[0])
    pendulum = GymBoxPlanningEnvironment(lambda: gym.make("Pendulum-v1", render_mode="rgb_array"), (16, 16))
    with pytest.raises(ValueError, match=r"`replan_every` to be at most `horizon`=2 but got 3"):
        ContinuousPlanningProbe(pendulum, pusher_goal_progress, seeds=[0], horizon=2, replan_every=3)
