"""Decision agreement: task_validity in mode="decision" and its functional twin."""

import pytest
import torch

from simgate_tracking import ProbeSet, evaluate
from simgate_tracking.functional import task_validity
from simgate_tracking.functional.decision import decision_agreement
from simgate_tracking.metrics import SimulatorScorecard, TaskValidity


def _real(n=200, branches=4, seed=0):
    return torch.rand(n, branches, generator=torch.Generator().manual_seed(seed))


def test_oracle_scores_one_and_ignoring_actions_scores_chance():
    real = _real()
    assert decision_agreement(real, real) == (1.0, 1.0)
    score, no_regret = decision_agreement(torch.zeros_like(real), real)
    assert score == 0.0  # exactly chance, after chance correction
    assert no_regret.item() == pytest.approx(
        ((real - real.amin(1, keepdim=True)).mean(1) / (real.amax(1) - real.amin(1))).mean().item(), abs=1e-5
    )


def test_random_planner_is_at_chance_or_below_and_reversed_is_zero():
    real = _real()
    assert decision_agreement(_real(seed=1), real)[0] < 0.1
    assert decision_agreement(-real, real) == (0.0, 0.0)


def test_score_moves_monotonically_with_noise_on_the_task_values():
    real = _real()
    scores = [decision_agreement(real + s * _real(seed=2), real)[0].item() for s in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0 and scores[-1] < 0.5


def test_metric_in_chunks_equals_functional():
    real, pred = _real(), _real(seed=3)
    metric = TaskValidity(mode="decision")
    for p, r in zip(pred.split(37), real.split(37), strict=True):
        metric.update(p, r)
    score, no_regret = decision_agreement(pred, real)
    assert metric.compute() == pytest.approx(score.item(), abs=1e-6)
    assert metric.no_regret() == pytest.approx(no_regret.item(), abs=1e-6)
    assert task_validity(pred, real, mode="decision") == pytest.approx(score.item(), abs=1e-6)


def test_episodes_without_a_decision_are_left_out():
    real = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert decision_agreement(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), real) == (1.0, 1.0)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"`pred` to have shape \(B, K\+1\)"):
        TaskValidity(mode="decision").update(torch.zeros(3), torch.zeros(3))
    with pytest.raises(RuntimeError, match="mode='decision'"):
        TaskValidity().no_regret()


def test_probe_with_per_branch_outcomes_gates_on_decisions():
    gen = torch.Generator().manual_seed(0)
    targets = torch.rand(6, 3, 4, 3, 8, 8, generator=gen)
    actions = torch.randn(6, 3, 4, 2, generator=gen)
    outcomes = targets.mean(dim=(2, 3, 4, 5))  # the task value of a future: its brightness
    probe = ProbeSet(context=targets[:, 0, :1], actions=actions, targets=targets, outcomes=outcomes)

    def replay(context, actions, generator=None):
        hits = [(probe.actions == a).all(-1).all(-1).nonzero()[0] for a in actions]
        return torch.stack([probe.targets[n, k] for n, k in hits])

    def brightness(frames):
        return frames.mean(dim=(1, 2, 3, 4))

    result = evaluate(replay, probe, task_fn=brightness, batch_size=4)
    assert result.scores["task_validity"] == 1.0 and result.extras["decision_no_regret"] == 1.0
    wrong = evaluate(replay, probe, task_fn=lambda frames: -brightness(frames), batch_size=4)
    assert wrong.scores["task_validity"] == 0.0 and wrong.weakest_axis == "task_validity"


def test_scorecard_reports_no_regret_in_decision_mode():
    card = SimulatorScorecard(task_mode="decision")
    frames = torch.rand(2, 3, 4, 3, 8, 8)
    card.update(frames, frames, task_pred=_real(2, 3), task_real=_real(2, 3))
    assert {"task_validity", "decision_no_regret"} <= card.compute().keys()
