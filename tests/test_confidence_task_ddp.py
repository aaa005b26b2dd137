"""Real 2-process DDP on CPU (gloo): task validity's interval from rows gathered in episode order = one process."""

import pytest
import torch

from simgate_tracking.confidence import gate_intervals
from simgate_tracking.metrics import SimulatorScorecard
from tests.helpers.gloo import run_on_ranks

WORLD_SIZE = 2
EPISODES, BRANCHES, TAKES, GROUPS = 7, 2, 3, 3  # uneven shards: 4 and 3 episodes


def bundle():
    """Rollouts, per-branch task outcomes against three real takes, and returns with policy ids."""
    g = torch.Generator().manual_seed(6)
    real = torch.rand(EPISODES, BRANCHES, 4, 3, 8, 8, generator=g)
    model = (real + 0.3 * torch.rand(real.shape, generator=g)).clamp(0, 1)
    success = torch.rand(EPISODES, BRANCHES, TAKES, generator=g) < 0.5
    judged = torch.rand(EPISODES, BRANCHES, generator=g) < 0.6
    returns = torch.rand(EPISODES, generator=g)
    guesses = returns + 0.3 * torch.randn(EPISODES, generator=g)
    return model, real, success, judged, returns, guesses, torch.arange(EPISODES) % GROUPS


def intervals(indices):
    model, real, success, judged, returns, guesses, groups = bundle()
    agreement = SimulatorScorecard(num_takes=TAKES, episode_scores=True)
    ranking = SimulatorScorecard(task_mode="ranking", num_groups=GROUPS, episode_scores=True)
    takes = real.unsqueeze(1).expand(-1, TAKES, -1, -1, -1, -1, -1)
    out = {}
    for name, card in (("agreement", agreement), ("ranking", ranking)):
        for i in indices.split(2):
            if name == "agreement":  # one judged row per (episode, branch), episode-major
                task = {"task_pred": judged[i].flatten(), "task_real": success[i].flatten(0, 1)}
                card.update(model[i], takes[i], episode_index=i, **task)
            else:
                task = {"task_pred": guesses[i], "task_real": returns[i], "groups": groups[i]}
                card.update(model[i], real[i], episode_index=i, **task)
        statistics = card.episode_statistics()
        out[name] = (statistics, gate_intervals(statistics, statistic_fns=card.interval_statistics()))
    return out


def _rank_intervals(rank):
    return intervals(torch.arange(rank, EPISODES, WORLD_SIZE))  # strided shards, as ProbeSet.shard


@pytest.fixture(scope="module")
def synced():
    return run_on_ranks(_rank_intervals, world_size=WORLD_SIZE)


def test_two_processes_give_the_single_process_task_interval(synced):
    alone = intervals(torch.arange(EPISODES))
    agreement_rows = alone["agreement"][0]["task_validity"]
    assert agreement_rows.shape == (EPISODES, 4 * (1 + TAKES))  # the branches' rows summed per episode
    assert alone["ranking"][0]["task_validity"].shape == (EPISODES, 3 * GROUPS)
    assert "task_validity" in alone["agreement"][1][1]  # reality's own interval, with takes
    for rank in range(WORLD_SIZE):
        for mode, (statistics, (model, reality)) in alone.items():
            rank_statistics, (rank_model, rank_reality) = synced[rank][mode]
            for name, values in statistics.items():
                assert torch.equal(rank_statistics[name], values), (rank, mode, name)
            assert "task_validity" in rank_model
            assert rank_model == model and rank_reality == reality, (rank, mode)
