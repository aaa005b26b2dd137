"""The closed-loop planning probe: the planner, both ways of imagining, the real baseline, determinism, bad input."""

import pytest
import torch

from simgate_tracking.planning import CrossEntropyPlanner, GymPlanningEnvironment, PlanningProbe, minigrid_goal_progress
from simgate_tracking.probes import EnvironmentReplay
from simgate_tracking.probes.minigrid import minigrid_actions, minigrid_env_fn
from simgate_tracking.rollout import RolloutError
from simgate_tracking.toy import ToyPlanningEnvironment, ToyWorld, toy_goal_progress

SEEDS = [0, 1, 2]


def still(context, actions, generator=None):
    """A world model that ignores actions: the last context frame, forever."""
    return context[:, -1:].expand(-1, actions.shape[1], -1, -1, -1).clone()


class Recorder:
    """Wraps a world model and keeps every context and action batch it was asked to imagine from."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def rollout(self, context, actions, generator=None):
        self.calls.append((context.clone(), actions.clone(), [g.initial_seed() for g in generator]))
        return self.model(context, actions, generator)


def _toy_probe(**options):
    settings = dict(seeds=SEEDS, max_steps=12, horizon=4, candidates=8, iterations=2)
    settings.update(options)
    return PlanningProbe(ToyPlanningEnvironment(), toy_goal_progress, **settings)


def test_reality_as_the_world_model_plans_exactly_like_the_real_baseline():
    probe = _toy_probe(context="reset")
    result = probe.run(ToyWorld())  # re-simulates each candidate from the episode's seed and the actions played
    assert result.success == result.success_real == [True] * len(SEEDS)
    assert result.steps == result.steps_real
    assert torch.equal(result.expected, result.happened)  # every frame the planner expected is what happened


def test_a_model_that_ignores_actions_never_gets_there_while_the_real_baseline_does():
    result = _toy_probe().run(still)
    assert result.scores() == {"planning_success": 0.0, "planning_success_real": 1.0}
    assert result.steps == [12] * len(SEEDS)
    assert result.expected.shape == result.happened.shape == (2, 12, 3, 32, 32)  # two sample episodes


def test_observed_context_is_the_last_real_frames_and_reset_context_replays_the_actions_played():
    observed = Recorder(still)
    result = _toy_probe(iterations=1, num_sample_episodes=1).run(observed)
    happened = result.happened[0]
    for step in range(2, 12):  # episode 0: one world-model call per step, from the two latest real frames
        context, actions, seeds = observed.calls[step]
        assert torch.equal(context[0], happened[step - 2 : step])
        assert actions.shape == (8, 4, 5) and seeds == [SEEDS[0]] * 8

    from_reset = Recorder(still)
    _toy_probe(iterations=1, seeds=SEEDS[:1], context="reset").run(from_reset)
    first_context = from_reset.calls[0][0][0]
    for step, (context, actions, _) in enumerate(from_reset.calls):
        assert torch.equal(context[0], first_context)
        assert actions.shape == (8, step + 4, 5)  # the steps played, then the candidates


def test_a_run_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = _toy_probe(seeds=[3, 4]).run(still)
    assert torch.equal(torch.rand(3), expected_draw)
    second = _toy_probe(seeds=[3, 4]).run(still)
    assert first.steps_real == second.steps_real and torch.equal(first.happened, second.happened)


def test_the_baseline_is_computed_once():
    probe = _toy_probe(seeds=[0])
    baseline = probe.baseline()
    assert probe.run(still).steps_real == [len(e.played) for e in baseline] and probe.baseline() is baseline


def test_minigrid_environment_replay_plans_like_the_real_baseline():
    make_env, actions = minigrid_env_fn("MiniGrid-Empty-Random-6x6-v0"), minigrid_actions(3)
    environment = GymPlanningEnvironment(make_env, (48, 48), actions)
    probe = PlanningProbe(
        environment, minigrid_goal_progress, seeds=[0, 1], max_steps=10, horizon=4, candidates=8, context="reset"
    )
    result = probe.run(EnvironmentReplay(make_env, action_encoder=actions))
    assert result.success == result.success_real == [True, True]
    assert result.steps == result.steps_real
    assert torch.equal(result.expected, result.happened)


def test_gym_environment_restores_a_saved_state_any_number_of_times():
    env = GymPlanningEnvironment(minigrid_env_fn("MiniGrid-Empty-5x5-v0"), (32, 32), minigrid_actions(3))
    start = env.reset(seed=0)[-1]
    saved = env.save()
    for _ in range(2):
        assert not torch.equal(env.step(2), start)
        env.restore(saved)
    moves = [env.step(a) for a in (2, 2, 1, 2, 2)]  # forward, forward, turn right, forward, forward: the goal
    assert env.succeeded() and torch.equal(env.step(2), moves[-1])  # the episode ended: the last frame stays
    env.restore(saved)
    assert not env.succeeded()


def test_cross_entropy_refits_towards_the_best_sequences():
    def ones_then_zeros(actions):  # the best of 3**6 sequences: 1, 1, 1, 0, 0, 0
        target = torch.tensor([1, 1, 1, 0, 0, 0])
        return (actions == target).sum(dim=1).float(), torch.zeros(len(actions), 6, 1, 1, 1)

    shooting = CrossEntropyPlanner(3, horizon=6, candidates=32, iterations=1)
    refitted = CrossEntropyPlanner(3, horizon=6, candidates=32, iterations=3)
    for seed in range(4):  # the same budget per iteration: refitting finds the best, random shooting does not
        best = refitted.plan(ones_then_zeros, torch.Generator().manual_seed(seed))
        assert shooting.plan(ones_then_zeros, torch.Generator().manual_seed(seed)).value < best.value == 6
        assert best.actions.tolist() == [1, 1, 1, 0, 0, 0]


def test_ties_and_nan_keep_the_warm_start():
    def flat(actions):
        values = torch.zeros(len(actions))
        values[1:] = float("nan")  # a broken rollout never wins
        return values, torch.zeros(len(actions), 3, 1, 1, 1)

    warm = torch.tensor([2, 0, 1])
    plan = CrossEntropyPlanner(3, horizon=3, candidates=4).plan(flat, torch.Generator().manual_seed(1), warm)
    assert plan.actions.tolist() == [2, 0, 1] and plan.value == 0.0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_steps", 0, "`max_steps` to be an int >= 1 but got 0"),
        ("seeds", [], "`seeds` to be a non-empty sequence of non-negative ints"),
        ("seeds", [-1], "`seeds` to be a non-empty sequence of non-negative ints"),
        ("replan_every", 5, "`replan_every` to be at most `horizon`=4 but got 5"),
        ("context", "latest", "`context` to be 'observed' or 'reset' but got 'latest'"),
        ("candidates", 1, "`candidates` to be an int >= 2 but got 1"),
    ],
)
def test_bad_arguments_are_named(option, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _toy_probe(**{option: value})


def test_environment_and_judge_are_checked():
    with pytest.raises(ValueError, match="`environment` to be a PlanningEnvironment .* but got ToyWorld"):
        PlanningProbe(ToyWorld(), toy_goal_progress, seeds=[0])
    probe = PlanningProbe(ToyPlanningEnvironment(), lambda frames: frames.mean(), seeds=[0], candidates=4)
    with pytest.raises(
        RolloutError, match=r"task_fn\(frames\) to return task values of shape \(B,\) = \(4,\) but got \(\)"
    ):
        probe.run(still)
