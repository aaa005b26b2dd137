"""Rollouts outside [0, 1] are never scored silently: one warning per check, and a declared range is rescaled."""

import warnings

import pytest
import torch

from simgate_tracking import ProbeSet, evaluate
from tests.metrics.test_device_sync import HostReads

N, BRANCHES, T, C, H, W = 8, 2, 5, 3, 16, 16


@pytest.fixture(scope="module")
def probe():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(N, BRANCHES, T, C, H, W, generator=g)
    return ProbeSet(context=real[:, 0, :1].clone(), actions=torch.randn(N, BRANCHES, T, 2, generator=g), targets=real)


def replay(probe, transform=lambda frames: frames):
    """Reality itself, looked up by (episode, branch), then passed through ``transform`` (the model's output range)."""

    def rollout(context, actions, generator=None):
        hits = [((probe.actions == a).all(-1).all(-1)).nonzero()[0] for a in actions]
        return transform(torch.stack([probe.targets[n, k] for n, k in hits]))

    return rollout


def range_warnings(caught):
    return [str(w.message) for w in caught if "rollout frames range from" in str(w.message)]


def _evaluate(probe, rollout, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(rollout, probe, batch_size=2, **kwargs)
    return result, range_warnings(caught)


@pytest.mark.parametrize(
    ("name", "transform", "observed", "hint"),
    [
        ("0..255 floats", lambda x: x * 255, "to 255", "value_range=(0, 255)"),
        ("tanh output", lambda x: x * 2 - 1, "range from -1", "value_range=(-1, 1)"),
        ("1.2x brightness", lambda x: x * 1.2, "to 1.2", "value_range=(low, high)"),
    ],
)
def test_out_of_range_rollout_warns_once_naming_observed_and_expected_range(probe, name, transform, observed, hint):
    _, said = _evaluate(probe, replay(probe, transform))
    assert len(said) == 1, said  # 4 batches, 12 rollout calls: one warning for the check
    assert observed in said[0] and "expects values in [0, 1]" in said[0] and hint in said[0], said[0]


@pytest.mark.parametrize(
    ("value_range", "transform"), [((-1, 1), lambda x: x * 2 - 1), ((0, 255), lambda x: x * 255), ((0.0, 1.0), None)]
)
def test_declared_value_range_is_rescaled_and_scores_as_reality(probe, value_range, transform):
    oracle, _ = _evaluate(probe, replay(probe))
    result, said = _evaluate(probe, replay(probe, transform or (lambda x: x)), value_range=value_range)
    assert said == []
    for axis, score in oracle.scores.items():
        assert result.scores[axis] == pytest.approx(score, abs=1e-5), axis
    assert result.extras["psnr"] == pytest.approx(oracle.extras["psnr"], rel=1e-3)


def test_in_range_model_with_mild_noise_does_not_warn(probe):
    def noisy(frames):
        return frames + 0.01 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(1))

    _, said = _evaluate(probe, replay(probe, noisy))
    assert said == []


def test_declared_range_that_the_frames_still_leave_warns_in_the_declared_units(probe):
    _, said = _evaluate(probe, replay(probe, lambda x: x * 255), value_range=(-1, 1))
    assert len(said) == 1 and "expects values in [-1, 1]" in said[0] and "to 255" in said[0], said


def test_nan_rollout_alone_gives_no_range_warning(probe):
    _, said = _evaluate(probe, replay(probe, lambda x: torch.full_like(x, float("nan"))))
    assert said == []


def test_gathering_the_range_reads_nothing_on_the_host():
    from simgate_tracking.rollout import ObservedRange

    observed = ObservedRange()
    frames = torch.rand(2, 3, 3, 8, 8).index_fill_(0, torch.tensor([1]), 1.0)
    observed.update(frames)
    with HostReads() as spy:
        observed.update(frames * 3)
        observed.update(frames.half())
    assert spy.calls == []
    assert observed.warning() is not None and "to 3" in observed.warning()


@pytest.mark.parametrize("value_range", [(1, 0), (0, float("inf")), (0,), "0..1", (True, 2), None])
def test_bad_value_range_is_refused(probe, value_range):
    from simgate_tracking.rollout import ProbeRunner

    with pytest.raises(ValueError, match="`value_range` to be a pair"):
        ProbeRunner(probe, value_range=value_range)
    with pytest.raises(ValueError, match="`value_range` to be a pair"):
        evaluate(replay(probe), probe, value_range=value_range)


def test_the_callback_rescales_a_declared_value_range_in_a_real_trainer(probe, tmp_path):
    from simgate_tracking.callbacks import SimulatorGateCallback
    from tests.helpers.tiny_world import TinyWorldModel, trainer

    scores = {}
    for name, rollout, value_range in (
        ("oracle", replay(probe), (0.0, 1.0)),
        ("tanh", replay(probe, lambda x: x * 2 - 1), (-1.0, 1.0)),
    ):
        gate = SimulatorGateCallback(probe, rollout_fn=rollout, batch_size=2, value_range=value_range)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(tmp_path / name, [gate], max_epochs=1).fit(TinyWorldModel())
        assert range_warnings(caught) == []
        scores[name] = gate.history[-1].scores
    for axis, score in scores["oracle"].items():
        assert scores["tanh"][axis] == pytest.approx(score, abs=1e-5), axis
