"""The generic Gymnasium probe builder: determinism, branching from one state, episode ends, bad input."""

import subprocess
import sys

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

import torch

from simgate_tracking import evaluate
from simgate_tracking.probes import EnvironmentReplay, build_probe_set
from simgate_tracking.probes.frames import resize_frame
from simgate_tracking.probes.minigrid import (
    go_to_goal,
    minigrid_actions,
    minigrid_env_fn,
    minigrid_objects,
    reached_goal,
)

EMPTY = minigrid_env_fn("MiniGrid-Empty-5x5-v0")
DOORKEY = minigrid_env_fn("MiniGrid-DoorKey-5x5-v0")
BUILD_DOORKEY = (
    "from simgate_tracking.probes import build_probe_set\n"
    "from simgate_tracking.probes.minigrid import go_to_goal, minigrid_env_fn, minigrid_objects\n"
    "probe = build_probe_set(minigrid_env_fn('MiniGrid-DoorKey-5x5-v0'), [3, 1, 4], go_to_goal, horizon=6,"
    " size=(24, 24), mask_extractor=minigrid_objects)\n"
    "print(probe.manifest_hash)\n"
)


def turn_left(observation, env, rng):
    return 0


def test_probe_set_holds_uint8_frames_one_hot_actions_and_per_branch_outcomes():
    probe = build_probe_set(
        EMPTY,
        np.array([5, 6]),
        go_to_goal,
        num_counterfactual=3,
        horizon=4,
        size=(24, 32),
        action_encoder=minigrid_actions(3),
    )
    assert probe.context.shape == (2, 1, 3, 24, 32) and probe.context.dtype == torch.uint8
    assert probe.targets.shape == (2, 4, 4, 3, 24, 32) and probe.targets.dtype == torch.uint8
    assert probe.actions.shape == (2, 4, 4, 3) and torch.equal(probe.actions.sum(-1), torch.ones(2, 4, 4))
    assert probe.outcomes.shape == (2, 4) and probe.outcomes.dtype == torch.bool
    assert probe.seeds.tolist() == [5, 6] and probe.groups is None and probe.masks is None
    env = EMPTY()
    env.reset(seed=6)
    assert torch.equal(probe.context[1, 0], resize_frame(env.render(), (24, 32)))


def test_same_seeds_give_the_same_manifest_hash_in_another_process():
    probe = build_probe_set(
        DOORKEY,
        [3, 1, 4],
        go_to_goal,
        horizon=6,
        size=(24, 24),
        mask_extractor=minigrid_objects,
    )
    again = subprocess.run([sys.executable, "-c", BUILD_DOORKEY], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == probe.manifest_hash
    other = build_probe_set(DOORKEY, [3, 1, 5], go_to_goal, horizon=6, size=(24, 24))
    assert other.manifest_hash != probe.manifest_hash


def test_counterfactual_branches_start_with_another_action_than_the_reference():
    probe = build_probe_set(DOORKEY, list(range(6)), go_to_goal, num_counterfactual=3, horizon=3, size=(16, 16))
    first = probe.actions[:, :, 0].argmax(dim=-1)  # (N, K+1)
    assert (first[:, 1:] != first[:, :1]).all()
    assert (probe.targets[:, 1:] != probe.targets[:, :1]).flatten(2).any(dim=2).any()


def test_every_branch_starts_from_the_state_after_the_context():
    # the counterfactual policy is the reference policy: every branch must replay branch 0 exactly
    probe = build_probe_set(
        DOORKEY, [0, 7], go_to_goal, horizon=5, context_frames=3, size=(16, 16), counterfactual_policy=go_to_goal
    )
    assert torch.equal(probe.targets[:, 1:], probe.targets[:, :1].expand_as(probe.targets[:, 1:]))
    assert not torch.equal(probe.context[:, 0], probe.context[:, 2])  # the warm-up steps moved the agent


def test_episode_that_ends_early_repeats_its_last_frame_with_zero_actions():
    probe = build_probe_set(EMPTY, [0], go_to_goal, horizon=8, size=(16, 16), action_encoder=minigrid_actions(3))
    reference = probe.targets[0, 0]
    assert probe.outcomes[0, 0]  # the expert reaches the goal in 5 steps
    assert torch.equal(reference[5:], reference[4:5].expand(3, -1, -1, -1))
    assert probe.actions[0, 0, 5:].abs().sum() == 0
    assert probe.actions[0, 0, :5].sum() == 5


def test_several_policies_become_groups_ranked_by_the_environment_as_model():
    probe = build_probe_set(
        EMPTY, [0, 1, 2], [go_to_goal, turn_left], horizon=6, size=(32, 32), action_encoder=minigrid_actions(3)
    )
    assert probe.groups.tolist() == [0, 1, 0, 1, 0, 1]
    assert probe.seeds.tolist() == [0, 0, 1, 1, 2, 2]
    assert probe.outcomes.tolist() == [True, False] * 3  # the reference branch of each policy
    assert torch.equal(probe.context[0], probe.context[1])  # both policies start from the same reset
    replay = EnvironmentReplay(EMPTY, action_encoder=minigrid_actions(3))
    result = evaluate(replay, probe, task_fn=reached_goal)
    assert result.scores["task_validity"] == pytest.approx(1.0)


def pendulum():
    return gym.make("Pendulum-v1", render_mode="rgb_array")


def push(observation, env, rng):
    return np.array([1.5], dtype=np.float32)


class _Unbranchable(gym.Env):
    """Neither copyable (it holds a lock) nor replayable from reset(seed) (its reset ignores the seed)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self):
        import threading

        self.render_mode, self.lock, self.value = "rgb_array", threading.Lock(), 0.0
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        self.value = float(np.random.default_rng().random())
        return np.array([self.value], dtype=np.float32), {}

    def step(self, action):
        self.value += float(action[0]) * 0.1
        return np.array([self.value], dtype=np.float32), 0.0, False, False, {}

    def render(self):
        frame = np.zeros((8, 8, 3), dtype=np.uint8)
        frame[: 1 + int(abs(self.value) * 7) % 8] = 200
        return frame


def test_uncopyable_environment_gets_an_error_naming_the_fix():
    # copy.deepcopy cannot copy the environment, and its reset cannot be replayed either: no branching method is left
    with pytest.raises(TypeError, match=r"copy\.deepcopy\(env\) failed.*clone_fn=.*restore_fn="):
        build_probe_set(_Unbranchable, [0], push, horizon=3, size=(16, 16))


def save_pendulum(env):
    return env.unwrapped.state.copy(), env.unwrapped.last_u


def restore_pendulum(env, state):
    env.unwrapped.state, env.unwrapped.last_u = state[0].copy(), state[1]


def test_clone_and_restore_branch_an_uncopyable_continuous_environment():
    probe = build_probe_set(
        pendulum,
        [0, 1],
        push,
        horizon=4,
        size=(16, 16),
        clone_fn=save_pendulum,
        restore_fn=restore_pendulum,
        outcome="return",
    )
    assert probe.actions.shape == (2, 3, 4, 1) and probe.outcomes.dtype == torch.float32
    assert (probe.actions[:, 1:].abs() <= 2.0).all() and (probe.actions[:, 0] == 1.5).all()
    result = evaluate(EnvironmentReplay(pendulum), probe)
    assert all(score >= 0.99 for score in result.scores.values()), result.scores


def test_restore_that_misses_state_is_caught():
    def forget_torque(env, state):
        env.unwrapped.state = state[0].copy()  # leaves the last torque, drawn as an arrow, as the last branch left it

    with pytest.raises(RuntimeError, match="restore the whole state"):
        build_probe_set(pendulum, [1], push, horizon=3, size=(32, 32), clone_fn=save_pendulum, restore_fn=forget_torque)


class SimulatorHandle(gym.Wrapper):
    """An environment whose state lives behind a handle: a copy is the same simulator."""

    def __deepcopy__(self, memo):
        return self


def test_copies_that_share_state_are_caught():
    with pytest.raises(RuntimeError, match="copies share it"):
        build_probe_set(lambda: SimulatorHandle(EMPTY()), [0], go_to_goal, horizon=3, size=(16, 16))


def test_environment_without_rgb_array_frames_is_rejected():
    with pytest.raises(ValueError, match='render_mode="rgb_array"'):
        build_probe_set(lambda: gym.make("MiniGrid-Empty-5x5-v0"), [0], go_to_goal)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": [0, -1]}, "non-negative"),
        ({"seeds": "01"}, "seeds"),
        ({"seeds": [0.5]}, "non-negative ints"),
        ({"reference_policy": None}, "reference_policy"),
        ({"reference_policy": []}, "reference_policy"),
        ({"num_counterfactual": 0}, "num_counterfactual"),
        ({"horizon": 1}, "horizon"),
        ({"context_frames": 0}, "context_frames"),
        ({"size": (0, 16)}, "size"),
        ({"size": 16}, "size"),
        ({"outcome": "win"}, "outcome"),
        ({"clone_fn": save_pendulum}, "restore_fn"),
        ({"mask_extractor": "agent"}, "mask_extractor"),
        ({"env_fn": "MiniGrid-Empty-5x5-v0"}, "env_fn"),
    ],
)
def test_bad_arguments_raise_errors_naming_them(changes, match):
    arguments = {"env_fn": EMPTY, "seeds": [0], "reference_policy": go_to_goal, **changes}
    with pytest.raises(ValueError, match=match):
        build_probe_set(**arguments)


def test_policy_action_outside_the_encoding_is_named():
    with pytest.raises(ValueError, match="action_encoder"):
        build_probe_set(DOORKEY, [0], lambda observation, env, rng: 5, action_encoder=minigrid_actions(3))


def test_episode_ending_during_warm_up_asks_for_fewer_context_frames():
    with pytest.raises(ValueError, match="fewer `context_frames`"):
        build_probe_set(EMPTY, [0], go_to_goal, context_frames=7, size=(16, 16))


def test_replay_checks_its_inputs_and_the_probe_sets_origin():
    probe = build_probe_set(EMPTY, [0, 1], go_to_goal, horizon=3, context_frames=2, size=(16, 16))
    generators = [torch.Generator().manual_seed(int(s)) for s in probe.seeds]
    replay = EnvironmentReplay(EMPTY, reference_policy=go_to_goal)
    assert torch.equal(replay.rollout(probe.context, probe.actions[:, 0], generators), probe.targets[:, 0])
    with pytest.raises(ValueError, match="generator"):
        replay.rollout(probe.context, probe.actions[:, 0])
    with pytest.raises(ValueError, match="reference_policy"):
        EnvironmentReplay(EMPTY).rollout(probe.context, probe.actions[:, 0], generators)
    with pytest.raises(ValueError, match="built with"):
        EnvironmentReplay(DOORKEY, reference_policy=go_to_goal).rollout(probe.context, probe.actions[:, 0], generators)
    replay.close()
