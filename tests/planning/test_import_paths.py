"""The planning probe's home, its old import paths, and the one method the callback needs from it."""

import importlib

import lightning.pytorch as pl
import pytest
import torch

from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.callbacks._planning import planning_scores
from simgate_tracking.planning import PlanningProbe, PlanningProbeLike, PlanningResult
from simgate_tracking.toy import ToyPlanningEnvironment, ToyWorld, make_probe_set, toy_goal_progress

OLD_PATHS = {
    "simgate_tracking.probes.planning": (
        "simgate_tracking.planning",
        [
            "CrossEntropyPlanner",
            "GymPlanningEnvironment",
            "PlanningEnvironment",
            "PlanningProbe",
            "PlanningResult",
            "goal_progress",
            "minigrid_goal_progress",
        ],
    ),
    "simgate_tracking.probes.planning_envs": (
        "simgate_tracking.planning.environments",
        ["GymPlanningEnvironment", "PlanningEnvironment"],
    ),
    "simgate_tracking.probes.planning_judges": ("simgate_tracking.planning.judges", ["goal_progress"]),
    "simgate_tracking.probes.planning_planner": ("simgate_tracking.planning.planner", ["CrossEntropyPlanner", "Plan"]),
    "simgate_tracking.report": ("simgate_tracking.planning.result", ["PlanningResult"]),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_import_paths_give_the_same_objects(old):
    new, names = OLD_PATHS[old]
    for name in names:
        assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name), name


@pytest.mark.parametrize("old", ["simgate_tracking.probes.planning", "simgate_tracking.probes.planning_envs"])
def test_old_import_paths_still_give_the_toy_planning_task(old):
    module = importlib.import_module(old)
    assert module.ToyPlanningEnvironment is ToyPlanningEnvironment
    assert getattr(module, "toy_goal_progress", toy_goal_progress) is toy_goal_progress


def test_the_toy_planning_task_lives_with_the_toy_world():
    assert ToyPlanningEnvironment.__module__ == "simgate_tracking.toy.planning"
    assert toy_goal_progress.__module__ == "simgate_tracking.toy.planning"
    assert PlanningProbe.__module__ == "simgate_tracking.planning.probe"
    assert PlanningResult.__module__ == "simgate_tracking.planning.result"


class ScriptedPlanning:
    """Not a PlanningProbe: only the method the callback calls."""

    def __init__(self):
        self.calls = []

    def run(self, world_model, device=None):
        self.calls.append((world_model, device))
        return PlanningResult(success=[True, False], success_real=[True, True], steps=[3, 9], steps_real=[3, 4])


def test_any_object_with_run_is_a_planning_probe_for_the_callback():
    probe = ScriptedPlanning()
    assert isinstance(probe, PlanningProbeLike)
    assert isinstance(PlanningProbe(ToyPlanningEnvironment(), toy_goal_progress, seeds=[0]), PlanningProbeLike)
    callback = SimulatorGateCallback(make_probe_set(num_episodes=2, horizon=4), planning_probe=probe)
    assert callback.planning_probe is probe


def test_the_callbacks_planning_step_calls_run_and_takes_its_scores():
    probe = ScriptedPlanning()
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    world = ToyWorld()
    result, scores = planning_scores(probe, trainer, world.rollout, torch.device("cpu"))
    assert probe.calls == [(world.rollout, torch.device("cpu"))]
    assert scores == {"planning_success": 0.5, "planning_success_real": 1.0}
    assert result is not None and result.steps == [3, 9]


@pytest.mark.parametrize("bad", [object(), "probe", 3])
def test_a_planning_probe_without_run_is_refused_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"`planning_probe`.*run\(world_model, device\).*but got"):
        SimulatorGateCallback(make_probe_set(num_episodes=2, horizon=4), planning_probe=bad)


@pytest.mark.parametrize("old", sorted(name for name in OLD_PATHS if name.startswith("simgate_tracking.probes.")))
def test_old_import_paths_say_where_the_names_moved(old):
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {OLD_PATHS[old][0]}"):
        importlib.reload(importlib.import_module(old))
