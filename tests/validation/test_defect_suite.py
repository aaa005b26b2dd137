"""The gate is only as good as what it catches: every known defect, injected into real futures, on seeded scenes.

For each single-axis defect its own axis becomes the weakest and fails the gate; the oracle passes with every axis
>= 0.99; mild defects (noise std 0.01, slight blur) pass; defects hurting several axes fail; and each axis moves
monotonically with defect strength. Scores come from the user-facing metric classes and ``SimulatorGate``.
"""

import pytest
import torch

from simgate_tracking import AXES, SimulatorGate
from simgate_tracking.metrics import TaskValidity
from tests.helpers.defects import (
    MILD,
    MULTI_AXIS,
    SINGLE_AXIS,
    judge,
    oracle,
    score,
    scorecard,
    task_for,
    vanishes_after_occlusion,
)
from tests.helpers.scenes import SceneConfig, make_scene

SCENES = {
    "base": SceneConfig(seed=0),
    "more_branches_short_horizon": SceneConfig(seed=11, branches=4, steps=6),
}
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module", params=sorted(SCENES))
def scene(request):
    return make_scene(SCENES[request.param])


@pytest.fixture(scope="module")
def base_scene():
    return make_scene(SCENES["base"])


@pytest.fixture(scope="module")
def full_strength(scene):
    """Scores of the oracle and of every defect at full strength, each computed once per scene."""
    scores = {"oracle": scorecard(scene, oracle(scene))}
    for defect, (_, make) in SINGLE_AXIS.items():
        scores[defect] = scorecard(scene, make(scene, 1.0), task_for(defect))
    for defect, make in {**MULTI_AXIS, **MILD}.items():
        scores[defect] = scorecard(scene, make(scene, 1.0))
    return scores


def _ranking(scene, preds):
    metric = TaskValidity(mode="ranking", num_groups=scene.config.groups)
    metric.update(preds.returns, scene.returns, scene.groups)
    return float(metric.compute())


def test_oracle_passes_with_every_axis_near_one(scene, full_strength):
    result = SimulatorGate().evaluate(full_strength["oracle"])
    assert result.passed
    assert set(result.scores) == set(AXES)
    assert min(result.scores.values()) >= 0.99
    assert _ranking(scene, oracle(scene)) >= 0.99


@pytest.mark.parametrize("defect", sorted(SINGLE_AXIS))
def test_single_axis_defect_is_the_weakest_axis_and_fails_the_gate(full_strength, defect):
    axis = SINGLE_AXIS[defect][0]
    result = SimulatorGate().evaluate(full_strength[defect])
    assert result.weakest_axis == axis, result.scores
    assert not result.passed
    assert result.failing_axes[0] == axis


@pytest.mark.parametrize("defect", sorted(MILD))
def test_mild_defect_does_not_alarm(scene, full_strength, defect):
    result = SimulatorGate().evaluate(full_strength[defect])
    assert result.passed, result.scores
    assert min(result.scores.values()) > 0.9, result.scores
    assert _ranking(scene, MILD[defect](scene, 1.0)) > 0.9


@pytest.mark.parametrize("defect", sorted(MULTI_AXIS))
def test_defect_hurting_several_axes_fails_the_gate(full_strength, defect):
    result = SimulatorGate().evaluate(full_strength[defect])
    assert not result.passed
    assert len(result.failing_axes) >= 2, result.scores


def test_vanished_object_looks_good_but_fails_as_a_simulator(base_scene):
    result = judge(base_scene, vanishes_after_occlusion(base_scene, 1.0))
    assert result.extras["psnr"] > 25.0
    assert result.extras["ssim"] > 0.9
    assert result.scores["object_persistence"] < 0.1
    assert result.weakest_axis == "object_persistence" and not result.passed


@pytest.mark.parametrize("defect", sorted(SINGLE_AXIS) + sorted(MULTI_AXIS))
def test_axis_score_falls_monotonically_with_defect_strength(base_scene, defect):
    axis, make = SINGLE_AXIS.get(defect, ("temporal_consistency", MULTI_AXIS.get(defect)))
    task = task_for(defect)
    scores = [score(base_scene, make(base_scene, s), task)[axis] for s in STRENGTHS]
    assert scores[0] >= 0.99
    assert all(later <= earlier + 1e-6 for earlier, later in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] < 0.65, scores


def test_defects_are_deterministic(base_scene):
    for defect, (_, make) in SINGLE_AXIS.items():
        a, b = make(base_scene, 0.5), make(base_scene, 0.5)
        assert torch.equal(a.frames, b.frames) and torch.equal(a.second, b.second), defect
