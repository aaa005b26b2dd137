"""Real 2-process DDP on CPU (gloo): intervals from per-episode statistics gathered in episode order = one process."""

import pytest
import torch

from simgate_tracking.confidence import gate_intervals
from simgate_tracking.metrics import SimulatorScorecard
from tests.helpers.gloo import run_on_ranks

WORLD_SIZE = 2
EPISODES, TAKES = 7, 3  # uneven shards: 4 and 3 episodes


def bundle():
    """Model rollouts and three real takes of every episode: (B, K+1, T, C, H, W) and (B, R, K+1, T, C, H, W)."""
    g = torch.Generator().manual_seed(5)
    real = torch.rand(EPISODES, 1, 2, 5, 3, 8, 8, generator=g)
    takes = (real + 0.2 * torch.rand(EPISODES, TAKES, 2, 5, 3, 8, 8, generator=g)).clamp(0, 1)
    model = (real[:, 0] + 0.3 * torch.rand(EPISODES, 2, 5, 3, 8, 8, generator=g)).clamp(0, 1)
    return model, takes


def intervals(indices):
    model, takes = bundle()
    card = SimulatorScorecard(num_takes=TAKES, episode_scores=True)
    for i in indices.split(2):
        card.update(model[i], takes[i], episode_index=i)
        card.update_reset(model[i, 0], model[i, 0], model[i, 0], episode_index=i)
    statistics = card.episode_statistics()
    return statistics, gate_intervals(statistics)


def _rank_intervals(rank):
    return intervals(torch.arange(rank, EPISODES, WORLD_SIZE))  # strided shards, as ProbeSet.shard


@pytest.fixture(scope="module")
def synced():
    return run_on_ranks(_rank_intervals, world_size=WORLD_SIZE)


def test_two_processes_give_the_single_process_intervals(synced):
    statistics, (model, reality) = intervals(torch.arange(EPISODES))
    assert statistics["controllability"].shape == (EPISODES, 1 + TAKES)  # a ratio of sums: each episode's parts
    assert set(reality) == {"controllability", "temporal_consistency"}
    for rank in range(WORLD_SIZE):
        rank_statistics, (rank_model, rank_reality) = synced[rank]
        for name, values in statistics.items():
            assert torch.equal(rank_statistics[name], values), (rank, name)
        assert rank_model == model and rank_reality == reality, rank
