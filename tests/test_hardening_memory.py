"""A check's memory is bounded in the number of episodes, and the reset pass still catches carried state."""

import os
import re
import subprocess
import sys
import weakref

import pytest
import torch

from simgate_tracking import ProbeSet, evaluate

N, BRANCHES, T, C, H, W = 48, 2, 4, 3, 8, 8
BATCH = 2  # 24 batches


@pytest.fixture(scope="module")
def probe():
    # a still background of each episode's own colour and a small moving square: carried state shows at once
    g = torch.Generator().manual_seed(0)
    real = torch.rand(N, 1, 1, C, 1, 1, generator=g).expand(N, BRANCHES, T, C, H, W).clone()
    for t in range(T):
        for k in range(BRANCHES):
            real[:, k, t, :, 2 + k : 4 + k, t : t + 2] = 1.0
    return ProbeSet(context=real[:, 0, :1].clone(), actions=torch.randn(N, BRANCHES, T, 2, generator=g), targets=real)


class Reality:
    """The real futures; ``leak`` of the last frame it rendered bleeds into the next call (a model that keeps state).

    Counts how many of the rollouts it returned are still held by the runner at each call.
    """

    def __init__(self, probe, leak=0.0):
        self.probe, self.leak, self.state = probe, leak, None
        self.returned, self.most_alive = [], 0

    def rollout(self, context, actions, generator=None):
        self.most_alive = max(self.most_alive, sum(ref() is not None for ref in self.returned))
        same = (context.flatten(1)[:, None] == self.probe.context.flatten(1)[None]).all(-1)
        episode = same.float().argmax(dim=1)
        branch = (actions[:, None] == self.probe.actions[episode]).flatten(2).all(-1).float().argmax(dim=1)
        out = self.probe.targets[episode, branch].clone()
        if self.leak and self.state is not None:
            out = (1 - self.leak) * out + self.leak * self.state
        self.state = out[-1]
        self.returned.append(weakref.ref(out))
        return out


def test_the_runner_holds_a_few_batches_of_rollouts_whatever_the_number_of_episodes(probe):
    from simgate_tracking.rollout import RESET_WINDOW

    model = Reality(probe)
    evaluate(model.rollout, probe, batch_size=BATCH)
    assert len(model.returned) == 3 * N // BATCH  # every batch: reference, counterfactual, reset
    # two windows' first-pass references wait for their reset pass; nothing else outlives its batch
    assert model.most_alive <= 2 * RESET_WINDOW + 1 < N // BATCH, model.most_alive


@pytest.mark.parametrize("leak", [0.3, 0.5])
def test_a_model_that_keeps_state_still_fails_reset_reproducibility_over_many_batches(probe, leak):
    honest = evaluate(Reality(probe).rollout, probe, batch_size=BATCH)
    leaky = evaluate(Reality(probe, leak=leak).rollout, probe, batch_size=BATCH)
    assert honest.scores["reset_reproducibility"] == 1.0
    assert "reset_reproducibility" in leaky.failing_axes, leaky.scores


def test_each_windows_reset_pass_visits_its_batches_in_reverse_after_the_next_windows_first_pass(probe):
    from simgate_tracking.rollout import RESET_WINDOW

    calls = []

    def rollout(context, actions, generator=None):
        calls.append([int(g.initial_seed()) for g in generator])
        return Reality(probe).rollout(context, actions)

    evaluate(rollout, probe, batch_size=BATCH)
    batches = [[2 * b, 2 * b + 1] for b in range(N // BATCH)]
    windows = [batches[start : start + RESET_WINDOW] for start in range(0, len(batches), RESET_WINDOW)]
    expected = []
    for i, window in enumerate(windows):
        expected += [call for batch in window for call in (batch, [e for e in batch for _ in range(BRANCHES - 1)])]
        expected += windows[i - 1][::-1] if i else []
    expected += windows[-1][::-1]
    assert calls == expected


PEAK = """
import re, sys
from simgate_tracking.toy import make_probe_set

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

make_probe_set(num_episodes=2)  # what the first call imports and sets up
open("/proc/self/clear_refs", "w").write("5")  # the high-water mark starts again from what the process holds now
before = status("VmRSS")
probe = make_probe_set(num_episodes=int(sys.argv[1]))
size = sum(t.numel() * t.element_size() for t in (probe.context, probe.actions, probe.targets, probe.masks))
print(size, status("VmHWM") - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's resettable peak memory")
def test_making_a_toy_probe_set_peaks_at_about_its_size(tmp_path):
    out = subprocess.run([sys.executable, "-c", PEAK, "256"], check=True, capture_output=True, text=True, cwd=tmp_path)
    size, grown = (int(v) for v in out.stdout.split())
    assert re.fullmatch(r"\d+ \d+\n", out.stdout)
    assert grown <= 1.3 * size, f"make_probe_set grew the process by {grown / size:.2f}x the probe set"
