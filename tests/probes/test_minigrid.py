"""Probe sets from real MiniGrid environments: the environment as its own world model passes every axis."""

import pytest
import torch

from simgate_tracking import AXES, evaluate
from simgate_tracking.probes import EnvironmentReplay, build_probe_set
from simgate_tracking.probes.minigrid import (
    go_to_goal,
    minigrid_actions,
    minigrid_env_fn,
    minigrid_objects,
    reached_goal,
)

# (env id, actions the world model sees, horizon long enough for the expert to reach the goal)
ENVS = {
    "MiniGrid-Empty-5x5-v0": (3, 6),
    "MiniGrid-DoorKey-5x5-v0": (7, 16),
}
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module", params=sorted(ENVS))
def env_probe(request):
    env_id = request.param
    num_actions, horizon = ENVS[env_id]
    make_env, actions = minigrid_env_fn(env_id), minigrid_actions(num_actions)
    probe = build_probe_set(
        make_env,
        SEEDS,
        go_to_goal,
        horizon=horizon,
        size=(32, 32),
        action_encoder=actions,
        mask_extractor=minigrid_objects,
        name=env_id,
    )
    return env_id, make_env, actions, probe


def test_environment_as_world_model_scores_one_on_every_axis(env_probe):
    _, make_env, actions, probe = env_probe
    result = evaluate(EnvironmentReplay(make_env, action_encoder=actions), probe, task_fn=reached_goal)
    assert set(result.scores) == set(AXES)
    assert all(score >= 0.99 for score in result.scores.values()), result.scores
    assert result.passed


def test_goal_judge_on_real_frames_agrees_with_the_environment(env_probe):
    _, _, _, probe = env_probe
    judged = reached_goal(probe.targets.flatten(0, 1)).view(probe.outcomes.shape)
    assert torch.equal(judged, probe.outcomes)
    # the expert reaches the goal, random branches do not: both verdicts occur, so task validity is informative
    assert probe.outcomes[:, 0].all()
    assert not probe.outcomes[:, 1:].any()


def test_goal_judge_accepts_float_frames_and_rejects_other_shapes(env_probe):
    _, _, _, probe = env_probe
    frames = probe.targets[:, 0]
    assert torch.equal(reached_goal(frames.float() / 255), reached_goal(frames))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        reached_goal(frames[:, 0])


def test_replay_that_hides_an_object_fails_object_persistence(env_probe):
    _, make_env, actions, probe = env_probe
    replay = EnvironmentReplay(make_env, action_encoder=actions)

    def loses_the_agent(context, plays, generator=None):
        frames = replay.rollout(context, plays, generator).clone()
        agent = probe.masks[:, -1, 0]  # the agent's cell at the last step, per episode (seeds are 0..N-1)
        hidden = torch.stack([agent[int(g.initial_seed())] for g in generator])
        frames[:, -1] = frames[:, -1].masked_fill(hidden[:, None], 0)
        return frames

    result = evaluate(loses_the_agent, probe, task_fn=reached_goal)
    assert result.scores["object_persistence"] < 0.65
    assert not result.passed


def test_masks_hold_the_agent_first_and_follow_it():
    make_env = minigrid_env_fn("MiniGrid-Empty-5x5-v0")
    probe = build_probe_set(
        make_env,
        [0],
        go_to_goal,
        horizon=5,
        size=(40, 40),
        action_encoder=minigrid_actions(3),
        mask_extractor=minigrid_objects,
    )
    assert probe.masks.shape == (1, 5, 2, 40, 40)  # the agent and the goal
    frames = probe.targets[0, 0].float() / 255
    red = (frames[:, 0] > 0.5) & (frames[:, 1] < 0.2) & (frames[:, 2] < 0.2)
    assert red.flatten(1).any(dim=1).all()
    # every red pixel (the agent's triangle) lies in the agent's mask, at every step
    assert not (red & ~probe.masks[0, :, 0]).any()
    assert probe.masks[0, :, 0].flatten(1).sum(dim=1).eq(64).all()  # one 8x8-pixel cell
    assert probe.visible[0].all()


def test_picked_up_key_leaves_the_grid_and_is_not_visible():
    probe = build_probe_set(
        minigrid_env_fn("MiniGrid-DoorKey-5x5-v0"),
        [0],
        go_to_goal,
        num_counterfactual=1,
        horizon=12,
        size=(32, 32),
        action_encoder=minigrid_actions(7),
        mask_extractor=minigrid_objects,
    )
    picked = probe.actions[0, 0].argmax(dim=-1) == 3  # the expert's pickup step
    assert picked.sum() == 1
    step = int(picked.nonzero())
    visible = probe.visible[0]
    assert visible[:, 0].all()  # the agent
    # slots: agent, then key, door and goal in scan order; exactly one slot disappears when the key is picked up
    assert visible.shape[1] == 4
    gone = visible[:step].all(dim=0) & ~visible[step:].any(dim=0)
    assert gone.sum() == 1
    assert not probe.masks[0, step:, gone].any()


def test_minigrid_env_fn_names_close_matches_for_an_unknown_id():
    with pytest.raises(ValueError, match="MiniGrid-Empty-5x5-v0"):
        minigrid_env_fn("MiniGrid-Empty-5X5-v0")
    with pytest.raises(ValueError, match="tile_size"):
        minigrid_env_fn("MiniGrid-Empty-5x5-v0", tile_size=0)


@pytest.mark.parametrize("num_actions", [0, 8, 2.5])
def test_minigrid_actions_rejects_counts_outside_minigrids_actions(num_actions):
    with pytest.raises(ValueError, match="num_actions"):
        minigrid_actions(num_actions)


def test_objects_need_a_full_grid_render():
    env = minigrid_env_fn("MiniGrid-Empty-5x5-v0")()
    with pytest.raises(ValueError, match="after reset"):
        minigrid_objects(env)
    env.reset(seed=0)
    env.unwrapped.agent_pov = True
    with pytest.raises(ValueError, match="agent_pov"):
        minigrid_objects(env)
