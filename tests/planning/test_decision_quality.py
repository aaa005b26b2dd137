"""Decision quality on real worlds: a model whose futures look right but draw the goal in the wrong place.

On the toy world and on MiniGrid, three world models: reality itself (the oracle), one that ignores actions, and
one that is reality except that the goal region is drawn off its true place (one goal width in the toy world, one
cell in MiniGrid). Decision agreement (task_validity in decision mode) scores the oracle 1, the others at chance
(0); the goal-off model keeps every other axis high and fails the gate on decisions alone. The planning probe
shows the same: planning on the goal-off model reaches the goal less often than planning on reality.
"""

from dataclasses import replace

import pytest

gym = pytest.importorskip("gymnasium")

import torch

from simgate_tracking import AXES, evaluate
from simgate_tracking.planning import GymPlanningEnvironment, PlanningProbe, minigrid_goal_progress
from simgate_tracking.probes import EnvironmentReplay, build_probe_set
from simgate_tracking.probes.episodes import ScriptedActions, episode_rng, play_branch, reset_context
from simgate_tracking.probes.minigrid import go_to_goal, minigrid_actions, minigrid_env_fn, reached_goal
from simgate_tracking.toy import ToyPlanningEnvironment, ToyWorld, make_probe_set, toy_goal_progress
from simgate_tracking.toy.task import reached_goal as toy_reached_goal
from simgate_tracking.toy.world import GOAL_SIZE, WORLD_SIZE

MINIGRID = "MiniGrid-Empty-Random-6x6-v0"
SIZE = (48, 48)  # 6 x 6 cells of 8 pixels: no resampling blurs the goal


def still(context, actions, generator=None):
    """Ignores actions: the last context frame, forever."""
    return context[:, -1:].expand(-1, actions.shape[1], -1, -1, -1).clone()


class ToyGoalOff:
    """The toy world re-simulated from each seed; the goal drawn one goal width sideways, towards the middle."""

    def __init__(self, shift: int = GOAL_SIZE):
        self.world, self.shift = ToyWorld(), shift

    def _drawn(self, state):
        x, y = state.goal
        return replace(state, goal=(x + (self.shift if x < WORLD_SIZE // 2 else -self.shift), y))

    def rollout(self, context, actions, generator=None):
        futures = []
        for plays, seed in zip(actions.argmax(-1).tolist(), [g.initial_seed() for g in generator], strict=True):
            state = self.world.reset(seed)
            for _ in range(context.shape[1] - 1):
                state = self.world.step(state, 0)
            frames = []
            for action in plays:
                state = self.world.step(state, action)
                frames.append(torch.from_numpy(self.world.render(self._drawn(state))[0]))
            futures.append(torch.stack(frames))
        return torch.stack(futures)


class GoalDrawnOneCellLeft(gym.Wrapper):
    """MiniGrid as it is, except that every rendered frame shows the goal one cell to the left of where it is."""

    def render(self):
        grid = self.unwrapped.grid
        ((x, y),) = [(x, y) for x in range(grid.width) for y in range(grid.height) if _is_goal(grid.get(x, y))]
        goal, left = grid.get(x, y), grid.get(x - 1, y)
        grid.set(x, y, None)
        grid.set(x - 1, y, goal)
        try:
            return self.env.render()
        finally:
            grid.set(x - 1, y, left)
            grid.set(x, y, goal)


def _is_goal(cell):
    return cell is not None and cell.type == "goal"


class MiniGridGoalOff:
    """The environment replayed from each episode's seed, rendered with the goal one cell off."""

    def __init__(self):
        self.env, self.actions = GoalDrawnOneCellLeft(minigrid_env_fn(MINIGRID)()), minigrid_actions(3)

    def rollout(self, context, actions, generator=None):
        futures = []
        for plays, rng in zip(actions.cpu(), generator, strict=True):
            seed = rng.initial_seed()
            _, observation = reset_context(self.env, seed, context.shape[1], None, self.actions, SIZE)
            script = ScriptedActions([self.actions.decode(a) for a in plays])
            branch = play_branch(self.env, script, episode_rng(seed, 1), observation, len(plays), self.actions, SIZE)
            futures.append(branch.frames)
        return torch.stack(futures)


@pytest.fixture(scope="module")
def toy_probe():
    return make_probe_set(num_episodes=16, horizon=10)


@pytest.fixture(scope="module")
def minigrid_probe():
    make_env = minigrid_env_fn(MINIGRID)
    return build_probe_set(make_env, range(8), go_to_goal, horizon=8, size=SIZE, action_encoder=minigrid_actions(3))


def test_toy_world_outcomes_are_per_branch_and_the_judge_reads_them_from_frames(toy_probe):
    assert toy_probe.outcomes.shape == (16, 3) and toy_probe.outcomes.dtype == torch.bool
    judged = toy_reached_goal(toy_probe.targets.flatten(0, 1)).view(16, 3)
    assert torch.equal(judged, toy_probe.outcomes)
    assert (toy_probe.outcomes.any(1) & ~toy_probe.outcomes.all(1)).sum() >= 4  # episodes with a decision to make


def test_toy_world_decision_agreement_of_oracle_and_action_ignoring_model(toy_probe):
    oracle = evaluate(ToyWorld(), toy_probe, task_fn=toy_reached_goal)
    assert oracle.scores["task_validity"] == 1.0 and oracle.extras["decision_no_regret"] == 1.0
    ignoring = evaluate(still, toy_probe, task_fn=toy_reached_goal)
    assert ignoring.scores["task_validity"] == 0.0 and ignoring.extras["decision_no_regret"] < 0.5


def test_toy_goal_drawn_off_looks_right_but_fails_as_a_simulator_on_decisions(toy_probe):
    result = evaluate(ToyGoalOff(), toy_probe, task_fn=toy_reached_goal)
    assert result.extras["psnr"] > 21.0 and result.extras["ssim"] > 0.89  # frames barely change
    assert all(result.scores[axis] > 0.95 for axis in AXES if axis != "task_validity")
    assert result.scores["task_validity"] < 0.2 and result.weakest_axis == "task_validity" and not result.passed
    # frame quality ranks it above a model that does not simulate anything
    assert result.extras["psnr"] > evaluate(still, toy_probe).extras["psnr"]


def test_toy_planning_on_the_goal_off_model_misses_the_goal_that_reality_reaches():
    probe = PlanningProbe(
        ToyPlanningEnvironment(),
        toy_goal_progress,
        seeds=[1, 2, 3],
        max_steps=16,
        horizon=5,
        candidates=16,
        context="reset",
    )
    oracle, goal_off = probe.run(ToyWorld()), probe.run(ToyGoalOff())
    assert oracle.success_rate == oracle.success_rate_real == 1.0
    assert goal_off.success_rate <= 1 / 3 and goal_off.success_rate_real == 1.0


def test_minigrid_outcomes_are_per_branch(minigrid_probe):
    assert minigrid_probe.outcomes.shape == (8, 3) and minigrid_probe.outcomes[:, 0].all()  # the expert succeeds
    judged = reached_goal(minigrid_probe.targets.flatten(0, 1)).view(8, 3)
    assert torch.equal(judged, minigrid_probe.outcomes)


def test_minigrid_decision_agreement_oracle_ignoring_and_goal_one_cell_off(minigrid_probe):
    replay = EnvironmentReplay(minigrid_env_fn(MINIGRID), action_encoder=minigrid_actions(3))
    oracle = evaluate(replay, minigrid_probe, task_fn=reached_goal)
    assert oracle.passed and oracle.scores["task_validity"] == oracle.extras["decision_no_regret"] == 1.0
    assert evaluate(still, minigrid_probe, task_fn=reached_goal).scores["task_validity"] == 0.0
    goal_off = evaluate(MiniGridGoalOff(), minigrid_probe, task_fn=reached_goal)
    assert goal_off.scores["task_validity"] == 0.0 and goal_off.weakest_axis == "task_validity"
    assert goal_off.extras["ssim"] > 0.9 and not goal_off.passed


def test_minigrid_planning_on_the_goal_off_model_misses_the_goal():
    actions = minigrid_actions(3)
    environment = GymPlanningEnvironment(minigrid_env_fn(MINIGRID), SIZE, actions)
    probe = PlanningProbe(
        environment, minigrid_goal_progress, seeds=[0, 1], max_steps=8, horizon=4, candidates=8, context="reset"
    )
    result = probe.run(MiniGridGoalOff())
    assert result.scores() == {"planning_success": 0.0, "planning_success_real": 1.0}
