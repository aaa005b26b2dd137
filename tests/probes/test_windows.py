"""Training windows built from played episodes, as the examples train their world models on them."""

import pytest
import torch

from simgate_tracking.probes import TrainingWindows
from simgate_tracking.toy import make_probe_set


def test_every_branch_of_every_episode_is_one_window_with_its_own_actions_and_future():
    probe = make_probe_set(num_episodes=3, num_branches=2, horizon=4)
    windows = TrainingWindows(probe)
    assert len(windows) == 3 * 2
    item = windows[3]  # episode 1, branch 1
    assert torch.equal(item["actions"], probe.actions[1, 1].float())
    assert torch.equal(item["future"], probe.targets[1, 1].float())
    assert torch.equal(item["context"], probe.context[1].float())


def test_uint8_frames_are_scaled_to_unit_range_on_access():
    probe = make_probe_set(num_episodes=2, num_branches=2, horizon=3)
    as_bytes = probe.subset([0, 1])
    frames = TrainingWindows(as_bytes)
    item = frames[0]
    assert (
        item["future"].dtype == torch.float32
        and 0.0 <= float(item["future"].min()) <= float(item["future"].max()) <= 1.0
    )
    from simgate_tracking.probes.windows import _unit

    assert torch.equal(_unit(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0.0, 1.0]))


def test_with_real_takes_take_zero_is_used():
    probe = make_probe_set(num_episodes=2, num_branches=2, horizon=3, takes=3, stochastic=True)
    windows = TrainingWindows(probe)
    assert len(windows) == 2 * 2
    assert torch.equal(windows[0]["future"], probe.take(0).targets[0, 0].float())


def test_anything_but_a_probe_set_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="`episodes` to be a ProbeSet"):
        TrainingWindows([1, 2, 3])
