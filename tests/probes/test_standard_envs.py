"""Standard Gymnasium environments as they come: branched without clone_fn, replayed as their own model."""

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

import torch

from simgate_tracking import evaluate
from simgate_tracking.probes import EnvironmentReplay, build_probe_set
from simgate_tracking.probes.snapshot import Snapshot


def random_policy(observation, env, rng):
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(space.n))
    return rng.uniform(space.low, space.high).astype(space.dtype)


def make(env_id, module=None):
    if module is not None:
        pytest.importorskip(module)
    return lambda: gym.make(env_id, render_mode="rgb_array")


def minigrid():
    pytest.importorskip("minigrid")
    from simgate_tracking.probes.minigrid import minigrid_env_fn

    return minigrid_env_fn("MiniGrid-Empty-5x5-v0")


def pusher():
    from simgate_tracking.probes.mujoco import mujoco_env_fn  # sets MUJOCO_GL before mujoco is imported

    pytest.importorskip("mujoco")

    return mujoco_env_fn("Pusher-v5", width=64, height=64)


def highway():
    pytest.importorskip("highway_env")
    from simgate_tracking.probes.highway import highway_env_fn

    return highway_env_fn(screen_width=128, screen_height=64)


ENVIRONMENTS = {
    "CartPole-v1": lambda: make("CartPole-v1"),
    "Acrobot-v1": lambda: make("Acrobot-v1"),
    "MountainCar-v0": lambda: make("MountainCar-v0"),
    "MountainCarContinuous-v0": lambda: make("MountainCarContinuous-v0"),
    "Pendulum-v1": lambda: make("Pendulum-v1"),
    "LunarLander-v3": lambda: make("LunarLander-v3", "Box2D"),
    "Pusher-v5": pusher,
    "highway-fast-v0": highway,
    "MiniGrid-Empty-5x5-v0": minigrid,
}


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_standard_environment_replayed_as_its_own_model_scores_one(name):
    env_fn = ENVIRONMENTS[name]()
    probe = build_probe_set(env_fn, [0, 1], random_policy, horizon=4, size=(32, 32), outcome="return")
    result = evaluate(EnvironmentReplay(env_fn), probe)
    assert result.scores and all(score >= 0.99 for score in result.scores.values()), (name, result.scores)


@pytest.mark.parametrize(
    ("name", "method"),
    [("Pendulum-v1", "deepcopy"), ("LunarLander-v3", "reset-replay"), ("Pusher-v5", "mujoco")],
)
def test_branching_method_is_chosen_by_the_environment(name, method):
    env = ENVIRONMENTS[name]()()
    env.reset(seed=0)
    snapshot = Snapshot(env, 0, torch.zeros(3, 1, 1, dtype=torch.uint8))
    snapshot.frame = torch.from_numpy(env.render().copy()).permute(2, 0, 1)
    snapshot.observation = env.unwrapped._get_obs() if name == "Pusher-v5" else None
    snapshot.branch_env()
    assert snapshot.method == method
    env.close()


@pytest.mark.parametrize("name", ["LunarLander-v3", "Pusher-v5"])
def test_takes_work_with_reset_replay_and_mujoco_state(name):
    env_fn = ENVIRONMENTS[name]()
    probe = build_probe_set(env_fn, [3], random_policy, horizon=3, size=(16, 16), context_frames=2, takes=2)
    assert probe.num_takes == 2
    for take in (0, 1):
        replay = EnvironmentReplay(env_fn, reference_policy=random_policy, take=take)
        generators = [torch.Generator().manual_seed(3)]
        frames = replay.rollout(probe.context, probe.actions[:, 0], generators)
        assert torch.equal(frames, probe.targets[:, take, 0])


class Blank(gym.Wrapper):
    """A renderer that draws nothing: every frame black, as highway-env under SDL_VIDEODRIVER=dummy."""

    def render(self):
        return np.zeros((40, 40, 3), dtype=np.uint8)


def test_environment_drawing_one_colour_is_refused():
    with pytest.raises(ValueError, match="one colour.*offscreen_rendering=True"):
        build_probe_set(lambda: Blank(gym.make("CartPole-v1", render_mode="rgb_array")), [0], random_policy, horizon=3)
