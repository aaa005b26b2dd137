"""`evaluate` in a plain distributed loop: FSDP2 `fully_shard` on 2 CPU processes (gloo) scores what one process does.

The world model's rollout calls its sharded forward, so every rollout call gathers the parameters: a rank making
one call more than its peer would fail or hang. Every collective has a deadline and so has the test.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from simgate_tracking import evaluate
from simgate_tracking.rollout import ProbeRunner
from simgate_tracking.sharding import padded_shard
from tests.helpers.gloo import run_on_ranks
from tests.helpers.tiny_world import A, C, H, W, make_probe_set, true_weights

pytest.importorskip("torch.distributed.fsdp", reason="needs torch.distributed")

WORLD_SIZE = 2
EPISODES = 7  # shards of 4 and 3 episodes before padding
DEADLINE_S = 120  # the whole 2-process run; a collective that waits longer than COLLECTIVE_S fails
COLLECTIVE_S = 60


class ShardedWorld(nn.Module):
    """The tiny world's model with its action weights in a linear layer that ``fully_shard`` shards."""

    def __init__(self, start: float = 0.25, noise: float = 0.02) -> None:
        super().__init__()
        self.push = nn.Linear(A, C * H * W, bias=False)
        with torch.no_grad():
            self.push.weight.copy_(start * true_weights().T)
        self.noise = noise
        self.calls = 0

    def forward(self, actions: Tensor) -> Tensor:
        self.calls += 1
        return self.push(actions.cumsum(dim=1))

    def rollout(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        frames = context[:, -1:].flatten(2) + self(actions)
        noise = torch.stack([torch.randn(frames.shape[1:], generator=g) for g in generator or []])
        return (frames + self.noise * noise).clamp(0, 1).view(len(actions), actions.shape[1], C, H, W)


def _scores(result):
    return {"scores": result.scores, "baseline": result.real_baseline, "intervals": result.intervals}


def _rank_scores(rank: int) -> dict:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = ShardedWorld()
    fully_shard(model.push, mesh=init_device_mesh("cpu", (WORLD_SIZE,)))
    probe = make_probe_set(num_episodes=EPISODES)
    sharded = evaluate(model, probe, batch_size=1)
    calls = model.calls
    # opted out: every rank scores every episode, and no rank syncs
    alone = evaluate(model, probe, batch_size=1, distributed=False)
    return {"sharded": _scores(sharded), "alone": _scores(alone), "calls": calls}


@pytest.fixture(scope="module")
def fsdp_outputs():
    return run_on_ranks(_rank_scores, world_size=WORLD_SIZE, deadline_s=DEADLINE_S, collective_s=COLLECTIVE_S)


def _close(a, b):
    for name, value in a.items():
        assert torch.allclose(torch.as_tensor(b[name]).double(), torch.as_tensor(value).double(), atol=1e-6), name
    assert set(a) == set(b)


def test_fsdp_evaluate_equals_single_process(fsdp_outputs):
    single = _scores(evaluate(ShardedWorld(), make_probe_set(num_episodes=EPISODES), batch_size=1))
    assert 0.1 < float(single["scores"]["controllability"]) < 0.99  # a model that is neither perfect nor blind
    for rank in range(WORLD_SIZE):
        _close(single["scores"], fsdp_outputs[rank]["sharded"]["scores"])
        _close(single["baseline"], fsdp_outputs[rank]["sharded"]["baseline"])
        for axis, interval in single["intervals"].items():
            assert fsdp_outputs[rank]["sharded"]["intervals"][axis] == pytest.approx(interval, abs=1e-6)


def test_every_rank_makes_the_same_calls_the_padding_included(fsdp_outputs):
    # 4 episodes a rank (3 + 1 repeat on rank 1), one episode a call: reference, counterfactuals, reset pass
    assert [fsdp_outputs[rank]["calls"] for rank in range(WORLD_SIZE)] == [3 * 4, 3 * 4]


def test_distributed_false_scores_every_episode_on_each_rank(fsdp_outputs):
    single = _scores(evaluate(ShardedWorld(), make_probe_set(num_episodes=EPISODES), batch_size=1))
    for rank in range(WORLD_SIZE):
        _close(single["scores"], fsdp_outputs[rank]["alone"]["scores"])


def test_padding_episodes_are_rolled_out_and_not_scored():
    probe = make_probe_set(num_episodes=EPISODES)
    runner = ProbeRunner(probe, batch_size=2)
    shard = padded_shard(EPISODES, 1, WORLD_SIZE)
    model = ShardedWorld()
    padded = runner.make_scorecard(episode_scores=True)
    runner.run(model.rollout, padded, indices=shard.indices, padding=shard.num_padding)
    assert model.calls == 2 * 3  # two batches of two episodes (the last with the repeat): three calls each
    plain = runner.make_scorecard(episode_scores=True)
    runner.run(model.rollout, plain, indices=probe.shard(1, WORLD_SIZE))
    assert padded.episode_scores()["episode_index"].tolist() == [1, 3, 5]
    _close(plain.compute(), padded.compute())
