"""The stochastic toy world: a randomly walking distractor, R real takes per episode, reality replaying each take."""

import numpy as np
import pytest
import torch

from simgate_tracking.toy import ToyWorld, make_probe_set, reached_goal, take_seed
from simgate_tracking.toy.data import ToyWorldDataset
from simgate_tracking.toy.world import AGENT_COLOUR, DISTRACTOR, OBJECT_COLOURS, OBJECT_SIZE, OCCLUDER_X

TAKES = 4
SLOT = 1 + DISTRACTOR  # the distractor's mask slot (slot 0 is the agent)
# manifest hashes of the deterministic probe sets before the stochastic option existed
DEFAULT_HASH = "8d1d9b7161e6dbd9f6ba34698eee4d913ba72290178abc07517ad3d9e978663b"
GROUPS_HASH = "c5c741a799b92ebb3a1031887f10552330ca3c97ea2f5dc566fb1947d3319095"
GROUPS_ARGS = {"num_episodes": 6, "num_branches": 4, "horizon": 8, "size": 48, "num_objects": 4, "seed": 3}


@pytest.fixture(scope="module")
def probe():
    return make_probe_set(num_episodes=8, num_branches=3, horizon=10, seed=0, takes=TAKES, stochastic=True)


def _generators(probe):
    return [torch.Generator().manual_seed(int(seed)) for seed in probe.seeds]


def _shows(frames, colour):
    """(..., 3, H, W) -> (..., H, W): the pixels of exactly this colour."""
    return (frames - torch.tensor(colour)[:, None, None]).abs().amax(dim=-3) < 1e-6


def test_the_deterministic_world_is_unchanged():
    default = make_probe_set()
    assert default.manifest_hash == DEFAULT_HASH
    assert make_probe_set(takes=1, stochastic=False).manifest_hash == DEFAULT_HASH
    assert make_probe_set(**GROUPS_ARGS, policy_groups=True, takes=1).manifest_hash == GROUPS_HASH
    assert default.num_takes == 1 and default.targets.ndim == 6


def test_r_takes_have_the_shapes_of_r_takes(probe):
    n, r, k, t, m = 8, TAKES, 3, 10, 3
    assert probe.num_takes == r
    assert probe.targets.shape == (n, r, k, t, 3, 32, 32)
    assert probe.masks.shape == (n, r, t, m, 32, 32)
    assert probe.visible.shape == (n, r, t, m)
    assert probe.outcomes.shape == (n, r, k) and probe.outcomes.dtype == torch.bool
    ranked = make_probe_set(num_episodes=3, num_branches=2, horizon=4, takes=2, stochastic=True, policy_groups=True)
    assert ranked.outcomes.shape == (3, 2) and ranked.groups.tolist() == [0, 1, 2]
    one = make_probe_set(num_episodes=3, num_branches=2, horizon=4, stochastic=True)
    assert one.num_takes == 1 and one.targets.shape == (3, 2, 4, 3, 32, 32)
    assert one.manifest_hash != make_probe_set(num_episodes=3, num_branches=2, horizon=4).manifest_hash


def test_takes_share_the_agents_motion_and_differ_only_where_the_distractor_goes(probe):
    deterministic = make_probe_set(num_episodes=8, num_branches=3, horizon=10, seed=0)
    assert torch.equal(probe.actions, deterministic.actions)  # same branches as the deterministic probe set
    assert torch.equal(probe.seeds, deterministic.seeds)
    agent = probe.masks[:, :, :, 0]
    assert torch.equal(agent, agent[:, :1].expand_as(agent))  # the agent moves alike in every take
    distractor = probe.masks[:, :, :, SLOT]
    for a in range(TAKES):
        for b in range(a + 1, TAKES):
            # in every episode the distractor is somewhere else in take a than in take b at some step
            assert (distractor[:, a] != distractor[:, b]).flatten(1).any(dim=1).all(), (a, b)
            # and nothing else differs: changed pixels are where the distractor shows in one of the two takes
            changed = (probe.targets[:, a] != probe.targets[:, b]).any(dim=-3)  # (N, K+1, T, H, W)
            blue = _shows(probe.targets[:, a], OBJECT_COLOURS[DISTRACTOR]) | _shows(
                probe.targets[:, b], OBJECT_COLOURS[DISTRACTOR]
            )
            assert changed.any() and not (changed & ~blue).any()
    assert torch.equal(probe.outcomes, probe.outcomes[:, :1].expand_as(probe.outcomes))  # the goal is the agent's


def test_the_branches_of_a_take_share_the_distractors_walk(probe):
    blue = _shows(probe.targets, OBJECT_COLOURS[DISTRACTOR])  # (N, R, K+1, T, H, W)
    agent = _shows(probe.targets, AGENT_COLOUR)
    for k in range(1, probe.num_branches):
        # the agent is drawn on top: away from both branches' agents the distractor shows at the same pixels
        away = ~(agent[:, :, k] | agent[:, :, 0])
        assert torch.equal(blue[:, :, k] & away, blue[:, :, 0] & away)
        assert not torch.equal(probe.targets[:, :, k], probe.targets[:, :, 0])  # the actions still change the future


def test_masks_are_exact_and_the_distractor_can_hide_behind_the_occluder(probe):
    reference = probe.targets[:, :, 0]
    for slot, colour in enumerate((AGENT_COLOUR, *OBJECT_COLOURS[:2])):
        assert torch.equal(probe.masks[:, :, :, slot], _shows(reference, colour)), f"mask slot {slot}"
    assert torch.equal(probe.visible, probe.masks.flatten(-2).any(dim=-1))
    hidden = ~probe.visible[..., SLOT]
    assert hidden.any() and probe.visible[..., SLOT].float().mean() > 0.5  # hides sometimes, shows mostly
    # a walk confined to the columns between the goal corners, each step 2 cells or none
    world = ToyWorld(stochastic=True, take=1)
    state = world.begin_take(world.reset(int(probe.seeds[0])), int(probe.seeds[0]))
    xs = []
    for _ in range(200):
        before = state.objects[DISTRACTOR]
        state = world.step(state, 0)
        x, y = state.objects[DISTRACTOR][:2]
        assert abs(x - before[0]) + abs(y - before[1]) in (0, 2)
        xs.append(x)
    assert 7 <= min(xs) and max(xs) + OBJECT_SIZE <= 25
    assert any(OCCLUDER_X[0] <= x and x + OBJECT_SIZE <= OCCLUDER_X[1] for x in xs)


def test_the_task_judge_agrees_with_the_world_in_every_take(probe):
    judged = reached_goal(probe.targets.flatten(0, 2)).view(probe.outcomes.shape)
    assert torch.equal(judged, probe.outcomes)
    assert 0 < int(probe.outcomes.sum()) < probe.outcomes.numel()


def test_the_world_replays_every_take_exactly(probe):
    for r in range(TAKES):
        world = ToyWorld(stochastic=True, take=r)
        for k in range(probe.num_branches):
            frames = world.rollout(probe.context, probe.actions[:, k], generator=_generators(probe))
            assert torch.equal(frames, probe.targets[:, r, k]), (r, k)


def test_a_held_out_take_differs_from_every_probe_take(probe):
    for held_out in (TAKES, TAKES + 1):
        frames = ToyWorld(stochastic=True, take=held_out).rollout(
            probe.context, probe.actions[:, 0], generator=_generators(probe)
        )
        for r in range(TAKES):
            differs = (frames != probe.targets[:, r, 0]).flatten(1).any(dim=1)
            assert differs.all(), (held_out, r)  # in every episode
    for seed in probe.seeds.tolist():
        assert len({take_seed(seed, r) for r in range(TAKES + 2)}) == TAKES + 2


def test_take_seed_is_numpys_child_stream_and_the_world_uses_it():
    for seed, take in ((0, 0), (7, 3), (2**32 - 1, 10)):
        child = np.random.SeedSequence(seed).spawn(take + 1)[take]
        assert take_seed(seed, take) == int(child.generate_state(1, np.uint32)[0])
        world = ToyWorld(stochastic=True, take=take)
        assert world.begin_take(world.reset(seed), seed).noise == take_seed(seed, take)
    assert take_seed(np.int64(5), 1) == take_seed(5, 1)
    world = ToyWorld()
    assert world.begin_take(world.reset(3), 3) == world.reset(3)  # the deterministic world has no take to begin


def test_stochastic_training_windows_follow_the_same_policies():
    plain = ToyWorldDataset(6, horizon=6, seed=4)
    noisy = ToyWorldDataset(6, horizon=6, seed=4, stochastic=True)
    assert torch.equal(plain.actions, noisy.actions)
    assert not torch.equal(plain.future, noisy.future)
    assert torch.equal(noisy.future, ToyWorldDataset(6, horizon=6, seed=4, stochastic=True).future)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: make_probe_set(takes=0), "`takes` to be an int >= 1 but got 0"),
        (lambda: make_probe_set(takes=True, stochastic=True), "`takes` to be an int >= 1 but got True"),
        (lambda: make_probe_set(takes=2.0, stochastic=True), "`takes` to be an int >= 1 but got 2.0"),
        (lambda: make_probe_set(takes=2), "`takes` to be 1 for the deterministic world .* but got 2"),
        (lambda: make_probe_set(stochastic=1), "`stochastic` to be a bool but got 1"),
        (lambda: ToyWorld(stochastic="yes"), "`stochastic` to be a bool but got 'yes'"),
        (lambda: ToyWorld(stochastic=True, take=-1), "`take` to be an int >= 0 but got -1"),
        (lambda: ToyWorld(stochastic=True, take=True), "`take` to be an int >= 0 but got True"),
        (lambda: ToyWorld(take=1), "`take` to be 0 in the deterministic world .* but got 1"),
        (lambda: take_seed(-1, 0), "`seed` to be an int >= 0 but got -1"),
        (lambda: take_seed(0, 1.5), "`take` to be an int >= 0 but got 1.5"),
        (lambda: ToyWorld(stochastic=True).step(ToyWorld().reset(0), 0), "but got noise=None"),
        (lambda: ToyWorldDataset(2, stochastic=None), "`stochastic` to be a bool but got None"),
    ],
)
def test_bad_arguments_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()
