"""The gate in stochastic worlds: a held-out real take passes, every defect fails on its own axis.

Each world is split into a probe set of R = 4 real takes and a held-out take whose randomness no probe take used
(see ``stochastic_defects``); defects are injected into the held-out take.
"""

from __future__ import annotations

import json

import pytest
import torch

from simgate_tracking import AXES, ProbeSet, SimulatorGate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.metrics import SimulatorScorecard
from simgate_tracking.toy import ToyWorld, make_probe_set, reached_goal
from tests.helpers.stochastic_defects import DEFECTS, judge, mild_noise, oracle, split_world
from tests.helpers.tiny_world import TinyWorldModel, trainer

TAKES = 4
STRENGTHS = (0.25, 0.5, 0.75, 1.0)


def _toy_world():
    probe = make_probe_set(num_episodes=12, num_branches=3, horizon=10, seed=0, takes=TAKES + 2, stochastic=True)
    return split_world(probe, TAKES)


@pytest.fixture(scope="module")
def toy_world():
    return _toy_world()


def test_held_out_take_passes_with_every_axis_at_least_0_8(toy_world):
    result = judge(toy_world, oracle(toy_world))
    assert result.passed, str(result)
    assert min(result.scores.values()) >= 0.8, str(result)
    assert set(result.real_baseline) == set(AXES)
    assert all(0.0 <= value <= 1.0 for value in result.real_baseline.values())


def test_mild_noise_does_not_alarm(toy_world):
    result = judge(toy_world, mild_noise(toy_world))
    assert result.passed, str(result)


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_fails_on_its_own_axis(toy_world, defect):
    axis, make = DEFECTS[defect]
    result = judge(toy_world, make(toy_world, 1.0))
    assert not result.passed, f"{defect}: {result}"
    if axis is not None:
        assert result.weakest_axis == axis, f"{defect}: {result}"
        assert axis in result.failing_axes


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_scores_fall_monotonically_with_defect_strength(toy_world, defect):
    axis, make = DEFECTS[defect]
    axis = axis or judge(toy_world, make(toy_world, 1.0)).weakest_axis
    scores = [judge(toy_world, make(toy_world, s)).scores[axis] for s in (0.0, *STRENGTHS)]
    assert all(a >= b - 1e-6 for a, b in zip(scores, scores[1:], strict=False)), (defect, scores)
    assert scores[0] - scores[-1] > 0.2, (defect, scores)


def test_takes_that_agree_score_as_one_take():
    """A deterministic world given as R identical takes scores as its one take, and reality's own score is 1."""
    probe = make_probe_set(num_episodes=6, num_branches=3, horizon=8, seed=1)
    noise = torch.randn(probe.targets.shape, generator=torch.Generator().manual_seed(0))
    model = (probe.targets.float() + 0.05 * noise).clamp(0, 1)
    real = probe.targets.float()

    def scores(target, masks, visible, task_real, takes):
        card = SimulatorScorecard(num_takes=takes)
        card.update(model, target, second=model[:, 0], masks=masks, visible=visible)
        return card.compute(), card.real_baseline()

    one, one_baseline = scores(real, probe.masks, probe.visible, None, 1)
    expand = (probe.num_branches > 0) and 4
    many, many_baseline = scores(
        real.unsqueeze(1).expand(-1, expand, *real.shape[1:]),
        probe.masks.unsqueeze(1).expand(-1, expand, *probe.masks.shape[1:]),
        probe.visible.unsqueeze(1).expand(-1, expand, *probe.visible.shape[1:]),
        None,
        expand,
    )
    for axis in ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility"):
        torch.testing.assert_close(many[axis], one[axis], rtol=1e-4, atol=1e-4, msg=axis)
        assert float(one_baseline[axis]) == 1.0 and float(many_baseline[axis]) == pytest.approx(1.0)


def test_gate_result_carries_reality_and_round_trips(toy_world):
    result = judge(toy_world, oracle(toy_world))
    again = type(result).from_json(result.to_json())
    assert again == result and again.real_baseline == result.real_baseline
    assert "(reality" in str(result)
    legacy = result.to_dict()
    del legacy["real_baseline"]  # a report written before real takes
    assert type(result).from_dict(legacy).real_baseline == {axis: 1.0 for axis in result.scores}
    assert SimulatorGate().evaluate({"controllability": 0.7}).real_baseline == {"controllability": 1.0}


class _Unseeded:
    """The held-out world, but each call draws another take: sampling that ignores the episode's seed."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, context, actions, generator=None):
        self.calls += 1
        return ToyWorld(stochastic=True, take=TAKES + self.calls).rollout(context, actions, generator)


def _ignores_actions(context, actions, generator=None):
    return ToyWorld(stochastic=True, take=TAKES).rollout(context, torch.zeros_like(actions), generator)


@pytest.mark.parametrize(
    ("name", "rollout_fn", "failing_axis"),
    [
        ("held_out_take", ToyWorld(stochastic=True, take=TAKES).rollout, None),
        ("ignores_actions", _ignores_actions, "controllability"),
        ("unseeded_sampling", _Unseeded(), "reset_reproducibility"),
    ],
)
def test_stochastic_checks_through_a_real_trainer(tmp_path, name, rollout_fn, failing_axis):
    probe = make_probe_set(num_episodes=8, num_branches=3, horizon=10, seed=0, takes=TAKES, stochastic=True)
    gate = SimulatorGateCallback(probe, rollout_fn=rollout_fn, task_fn=reached_goal, batch_size=4)
    trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel())
    result = gate.history[-1]
    assert set(result.real_baseline) == set(AXES) and result.real_baseline["reset_reproducibility"] == 1.0
    report = json.loads(sorted((tmp_path / "simgate").glob("check-*.json"))[-1].read_text())
    assert report["real_baseline"] == pytest.approx(result.real_baseline)
    if failing_axis is None:
        assert result.passed and min(result.scores.values()) >= 0.8, str(result)
    else:
        # a model ignoring actions also never reaches the goal: task validity fails with it
        assert not result.passed and failing_axis in result.failing_axes, str(result)
        assert result.scores[failing_axis] <= min(result.scores.values()) + 0.05, str(result)


def _fields(takes: int = 3) -> dict:
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, takes, 4, 1, 8, 8, dtype=torch.bool)
    masks[..., 2:5, 2:5] = True
    return dict(
        context=torch.rand(2, 1, 3, 8, 8, generator=g),
        actions=torch.randn(2, 2, 4, 1, generator=g),
        targets=torch.rand(2, takes, 2, 4, 3, 8, 8, generator=g),
        masks=masks,
        outcomes=torch.ones(2, takes, dtype=torch.bool),
    )


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"targets": "mismatched list"}, "targets[1]", "the shape and dtype of take 0"),
        ({"outcomes": torch.ones(2, 2)}, "outcomes", "(N, R) = (2, 3)"),
        ({"masks": torch.zeros(2, 4, 1, 8, 8, dtype=torch.bool)}, "masks", "(N, R, T, M, H, W) = (2, 3, 4, M, 8, 8)"),
        ({"targets": []}, "targets", "R >= 1 takes"),
    ],
)
def test_bad_takes_name_the_field_what_was_expected_and_given(change, field, expected):
    fields = _fields()
    if change.get("targets") == "mismatched list":
        change = {"targets": [fields["targets"][:, 0], fields["targets"][:, 1, :, :3]]}
        fields.pop("masks"), fields.pop("outcomes")
    with pytest.raises(ValueError, match="ProbeSet: expected") as info:
        ProbeSet(**{**fields, **change})
    assert f"`{field}`" in str(info.value) and expected in str(info.value) and "but got" in str(info.value)


def test_probe_set_of_takes_round_trips_and_one_take_is_stored_as_before(tmp_path):
    probe = ProbeSet(**_fields())
    assert probe.num_takes == 3 and "takes=3" in repr(probe)
    probe.save(tmp_path / "takes.probe")
    assert ProbeSet.load(tmp_path / "takes.probe") == probe
    one = _fields(1)
    squeezed = ProbeSet(**one)
    plain = ProbeSet(
        **{**one, "targets": one["targets"][:, 0], "masks": one["masks"][:, 0], "outcomes": one["outcomes"][:, 0]}
    )
    assert squeezed.num_takes == 1 and squeezed.manifest_hash == plain.manifest_hash
    assert probe.take(2).num_takes == 1 and torch.equal(probe.take(2).targets, probe.targets[:, 2])
    with pytest.raises(ValueError, match="take index in 0..2"):
        probe.take(3)


def test_metrics_refuse_takes_they_were_not_built_for():
    from simgate_tracking.metrics import Controllability, TaskValidity

    preds, target = torch.rand(2, 3, 4, 3, 8, 8), torch.rand(2, 4, 3, 4, 3, 8, 8)
    with pytest.raises(ValueError, match="R = 1 real take.*num_takes=4"):
        Controllability().update(preds, target)
    with pytest.raises(ValueError, match="R = 2 real take.*got R = 4"):
        Controllability(num_takes=2).update(preds, target)
    with pytest.raises(ValueError, match="`num_takes` to be an int >= 1"):
        Controllability(num_takes=0)
    with pytest.raises(ValueError, match="R = 3 takes"):
        TaskValidity(num_takes=3).update(torch.ones(2, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool))
    metric = Controllability(num_takes=4)
    metric.update(preds, target)
    assert 0.0 <= float(metric.compute()) <= 1.0 and 0.0 <= float(metric.real_baseline()) <= 1.0
