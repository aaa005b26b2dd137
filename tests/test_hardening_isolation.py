"""Rollout calls and the task judge cannot see each other's in-place changes: no score moves because of one."""

import pytest
import torch

from simgate_tracking import ProbeSet, evaluate

N, BRANCHES, T, C, H, W = 6, 3, 4, 3, 8, 8


@pytest.fixture(scope="module")
def probe():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(N, BRANCHES, T, C, H, W, generator=g)
    return ProbeSet(
        context=torch.rand(N, 2, C, H, W, generator=g),
        actions=torch.randn(N, BRANCHES, T, 2, generator=g),
        targets=real,
        outcomes=real[:, :, -1].mean(dim=(1, 2, 3, 4)) > 0.5,
    )


class Reality:
    """Answers each query with the real future of that (reset, actions); records the contexts it was given."""

    def __init__(self, probe, in_place=None):
        self.probe, self.in_place, self.seen = probe, in_place, []

    def rollout(self, context, actions, generator=None):
        self.seen.append(context.clone())
        same = (context.flatten(1)[:, None] == self.probe.context.flatten(1)[None]).all(-1)
        episode = same.float().argmax(dim=1)
        branch = (actions[:, None] == self.probe.actions[episode]).flatten(2).all(-1).float().argmax(dim=1)
        if self.in_place is not None:
            self.in_place(context, actions)
        return self.probe.targets[episode, branch].clone()


def judge(frames):
    return frames[:, -1].mean(dim=(1, 2, 3)) > 0.5


def test_a_rollout_that_changes_its_context_in_place_changes_no_other_call(probe):
    model = Reality(probe, in_place=lambda context, actions: (context.sub_(0.5), actions.mul_(-1)))
    result = evaluate(model.rollout, probe, task_fn=judge, batch_size=4)
    for context in model.seen:  # every call saw an untouched reset observation of the probe set
        assert any(torch.equal(row, c) for row in context for c in probe.context), "a call saw a changed context"
    assert min(result.scores.values()) == 1.0, result.scores
    assert torch.equal(probe.context, probe.context.clamp(0, 1))  # and the probe set itself is unchanged


def test_a_task_judge_that_changes_its_frames_in_place_changes_no_score(probe):
    def spoils(frames):
        verdict = judge(frames)
        frames.mul_(0.5)
        return verdict

    honest = evaluate(Reality(probe).rollout, probe, task_fn=judge, batch_size=4)
    result = evaluate(Reality(probe).rollout, probe, task_fn=spoils, batch_size=4)
    assert result.scores == honest.scores and min(result.scores.values()) == 1.0, result.scores


def test_a_task_judge_of_every_branch_that_changes_its_frames_changes_no_score(probe):
    per_branch = ProbeSet(
        context=probe.context,
        actions=probe.actions,
        targets=probe.targets,
        outcomes=probe.targets[:, :, -1].mean(dim=(2, 3, 4)) > 0.5,
    )

    def spoils(frames):
        verdict = judge(frames)
        frames.zero_()
        return verdict

    result = evaluate(Reality(per_branch).rollout, per_branch, task_fn=spoils, batch_size=4)
    assert min(result.scores.values()) == 1.0, result.scores
