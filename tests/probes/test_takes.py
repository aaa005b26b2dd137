"""Real takes of a stochastic world: the builder plays R takes, the replay reproduces any of them, or a new one."""

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

import torch

from simgate_tracking.probes import EnvironmentReplay, build_probe_set, sticky_actions, take_seed
from simgate_tracking.probes.gymnasium import _stack_takes
from simgate_tracking.probes.minigrid import go_to_goal, minigrid_env_fn, minigrid_objects

OBSTACLES = minigrid_env_fn("MiniGrid-Dynamic-Obstacles-6x6-v0")
STICKY_DOORKEY = sticky_actions(minigrid_env_fn("MiniGrid-DoorKey-5x5-v0"), probability=0.25)
SEEDS = [0, 1, 2, 3]
TAKES = 4
SMALL = {"horizon": 6, "size": (24, 24), "mask_extractor": minigrid_objects}


def turn_left(observation, env, rng):
    return 0


def seed_generators(probe):
    return [torch.Generator().manual_seed(int(s)) for s in probe.seeds]


def replay_every_branch(replay, probe):
    """(N, K+1, T, 3, H, W): the replay's future of every branch of the probe set."""
    branches = [replay.rollout(probe.context, probe.actions[:, k], seed_generators(probe)) for k in range(3)]
    return torch.stack(branches, dim=1)


@pytest.fixture(scope="module", params=["obstacles", "sticky_doorkey"])
def world(request):
    make_env = OBSTACLES if request.param == "obstacles" else STICKY_DOORKEY
    return make_env, build_probe_set(make_env, SEEDS, go_to_goal, takes=TAKES, **SMALL)


def test_one_take_is_todays_probe_set_and_take_zero_of_many():
    one = build_probe_set(OBSTACLES, SEEDS, go_to_goal, **SMALL)
    assert build_probe_set(OBSTACLES, SEEDS, go_to_goal, takes=1, **SMALL).manifest_hash == one.manifest_hash
    many = build_probe_set(OBSTACLES, SEEDS, go_to_goal, takes=3, **SMALL)
    assert many.take(0).manifest_hash == one.manifest_hash


def test_takes_have_per_take_shapes_and_one_slot_per_object(world):
    make_env, probe = world
    one = build_probe_set(make_env, SEEDS, go_to_goal, **SMALL)
    n, m = len(SEEDS), one.masks.shape[2]
    assert probe.num_takes == TAKES and probe.targets.shape == (n, TAKES, 3, 6, 3, 24, 24)
    assert probe.masks.shape == (n, TAKES, 6, m, 24, 24) and probe.visible.shape == (n, TAKES, 6, m)
    assert probe.outcomes.shape == (n, TAKES, 3) and probe.actions.shape == one.actions.shape
    assert torch.equal(probe.masks[:, 0], one.masks)  # same objects in the same slots as one take
    assert probe.masks[:, :, :, 0].flatten(2).any(dim=2).all()  # slot 0 is the agent in every take


def test_takes_differ_from_each_other(world):
    _, probe = world
    for r in range(TAKES):
        for q in range(r):
            assert not torch.equal(probe.targets[:, r], probe.targets[:, q]), (r, q)


def test_replay_of_take_r_reproduces_every_branch_of_that_take(world):
    make_env, probe = world
    for r in range(TAKES):
        replay = EnvironmentReplay(make_env, take=r)
        assert torch.equal(replay_every_branch(replay, probe), probe.targets[:, r]), r
        replay.close()


def test_held_out_take_starts_from_the_same_reset_and_differs_from_every_probe_take(world):
    make_env, probe = world
    held_out = replay_every_branch(EnvironmentReplay(make_env, take=TAKES), probe)  # raises if the context differed
    assert held_out.shape == probe.targets[:, 0].shape
    for r in range(TAKES):
        assert not torch.equal(held_out, probe.targets[:, r]), r


def test_first_step_after_a_reset_is_never_sticky():
    probe = build_probe_set(STICKY_DOORKEY, SEEDS, go_to_goal, takes=TAKES, **SMALL)
    first = probe.targets[:, :, :, 0]
    assert torch.equal(first, first[:, :1].expand_as(first))
    assert torch.equal(probe.masks[:, :, 0], probe.masks[:, :1, 0].expand_as(probe.masks[:, :, 0]))


def test_branches_of_a_take_share_its_randomness():
    # every branch plays the same actions: with common random numbers every branch of a take is the same future
    probe = build_probe_set(
        OBSTACLES, SEEDS, go_to_goal, horizon=6, size=(24, 24), takes=3, counterfactual_policy=go_to_goal
    )
    assert torch.equal(probe.targets, probe.targets[:, :, :1].expand_as(probe.targets))
    assert not torch.equal(probe.targets[:, 1], probe.targets[:, 2])


def test_reseed_fn_gets_the_take_seed_of_each_take_for_every_branch():
    calls = []

    def reseed(env, seed):
        calls.append(seed)
        env.unwrapped.np_random = np.random.default_rng(seed)

    probe = build_probe_set(OBSTACLES, [5, 6], go_to_goal, horizon=4, size=(16, 16), takes=3, reseed_fn=reseed)
    assert calls == [take_seed(s, r) for s in (5, 6) for r in (1, 2) for _ in range(3)]
    default = build_probe_set(OBSTACLES, [5, 6], go_to_goal, horizon=4, size=(16, 16), takes=3)
    assert probe.manifest_hash == default.manifest_hash
    replay = EnvironmentReplay(OBSTACLES, take=2, reseed_fn=reseed)
    assert torch.equal(
        replay.rollout(probe.context, probe.actions[:, 1], seed_generators(probe)), probe.targets[:, 2, 1]
    )


def test_several_policies_keep_one_reference_outcome_per_take():
    probe = build_probe_set(
        OBSTACLES, [0, 1], [go_to_goal, turn_left], horizon=4, size=(16, 16), takes=2, outcome="return"
    )
    assert probe.groups.tolist() == [0, 1, 0, 1] and probe.outcomes.shape == (4, 2)
    assert probe.targets.shape == (4, 2, 3, 4, 3, 16, 16)


def test_take_seeds_are_distinct_and_never_a_reset_seed():
    seeds = [take_seed(s, r) for s in (0, 1, 2**63, 2**64 - 1) for r in range(4)]
    assert len(set(seeds)) == len(seeds)
    assert take_seed(9, 0) == 9 and all(take_seed(s, r) >= 2**64 for s in (0, 9) for r in (1, 2))
    for seed, take in [(-1, 1), (2**64, 1), (0, -1), (0, True), (0.5, 1)]:
        with pytest.raises(ValueError, match="seed|take"):
            take_seed(seed, take)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"takes": 0}, "`takes` to be an int >= 1 but got 0"),
        ({"takes": True}, "`takes` to be an int >= 1 but got True"),
        ({"takes": 2.0}, "`takes` to be an int >= 1 but got 2.0"),
        ({"reseed_fn": "np_random"}, "`reseed_fn` to be callable or None but got 'np_random'"),
    ],
)
def test_bad_take_arguments_are_named(changes, match):
    with pytest.raises(ValueError, match=match):
        build_probe_set(OBSTACLES, [0], go_to_goal, horizon=3, size=(16, 16), **changes)


def test_reseed_fn_that_raises_is_named_with_the_episode_and_take():
    def broken(env, seed):
        raise KeyError("no rng here")

    with pytest.raises(ValueError, match=r"reseed_fn.*take 1 of the episode with seed 3.*KeyError") as error:
        build_probe_set(OBSTACLES, [3], go_to_goal, horizon=3, size=(16, 16), takes=2, reseed_fn=broken)
    assert isinstance(error.value.__cause__, KeyError)
    probe = build_probe_set(OBSTACLES, [3], go_to_goal, horizon=3, size=(16, 16))
    with pytest.raises(ValueError, match=r"reseed_fn.*take 2 of the episode with seed 3"):
        EnvironmentReplay(OBSTACLES, take=2, reseed_fn=broken).rollout(
            probe.context, probe.actions[:, 0], seed_generators(probe)
        )


class CountingWorld(gym.Env):
    """A world whose reset shows how often it was reset: its reset does not follow its seed alone."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self):
        self.render_mode = "rgb_array"
        self.action_space = gym.spaces.Discrete(2)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,))
        self.resets = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}

    def render(self):
        frame = np.full((8, 8, 3), 40 * self.resets, dtype=np.uint8)
        frame[0, 0] = 255  # not one colour: the builder refuses blank frames
        return frame


def test_takes_whose_resets_differ_are_named_with_the_seed_take_and_difference():
    with pytest.raises(ValueError, match=r"seed 3 .*take 1's context frames differ from take 0's by up to 40"):
        build_probe_set(CountingWorld, [3], turn_left, horizon=3, size=(8, 8), takes=2)
    assert build_probe_set(CountingWorld, [3], turn_left, horizon=3, size=(8, 8)).targets.shape[0] == 1


def test_takes_that_disagree_in_shape_are_named():
    with pytest.raises(ValueError, match=r"seed 7 .*`targets` of take 0's shape \(2, 3\) but take 1 gave \(2, 4\)"):
        _stack_takes([torch.zeros(2, 3), torch.zeros(2, 4)], "targets", 7)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"take": -1}, "`take` to be an int >= 0 but got -1"),
        ({"take": True}, "`take` to be an int >= 0 but got True"),
        ({"take": 1.0}, "`take` to be an int >= 0 but got 1.0"),
        ({"reseed_fn": 3}, "`reseed_fn` to be callable or None but got 3"),
    ],
)
def test_replay_rejects_bad_take_arguments(changes, match):
    with pytest.raises(ValueError, match=match):
        EnvironmentReplay(OBSTACLES, **changes)


def test_sticky_actions_rejects_bad_arguments_and_pickles():
    import pickle

    assert pickle.loads(pickle.dumps(STICKY_DOORKEY))().unwrapped.spec.id == "MiniGrid-DoorKey-5x5-v0"
    for env_fn, probability in [(STICKY_DOORKEY, 1.0), (STICKY_DOORKEY, -0.1), (STICKY_DOORKEY, True), ("x", 0.1)]:
        with pytest.raises(ValueError, match="probability|env_fn"):
            sticky_actions(env_fn, probability)
