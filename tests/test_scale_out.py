"""Shards padded to one length, and `evaluate`'s `distributed` switch, in one process."""

import pytest
import torch

from simgate_tracking import evaluate
from simgate_tracking.sharding import has_sharded_parameters, padded_shard, process_group
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set


@pytest.mark.parametrize(("episodes", "world_size"), [(7, 2), (9, 4), (8, 8), (5, 3)])
def test_padded_shards_have_one_length_and_cover_every_episode_once(episodes, world_size):
    shards = [padded_shard(episodes, rank, world_size) for rank in range(world_size)]
    assert len({len(shard.indices) for shard in shards}) == 1
    scored = torch.cat([shard.indices[: len(shard.indices) - shard.num_padding] for shard in shards])
    assert sorted(scored.tolist()) == list(range(episodes))
    for rank, shard in enumerate(shards):  # a rank repeats its own episodes only
        assert set(shard.indices.tolist()) <= set(range(rank, episodes, world_size))


@pytest.mark.parametrize(
    ("args", "match"), [((7, 2, 2), "rank=2, world_size=2"), ((1, 0, 2), "1 episode\\(s\\) for 2 processes")]
)
def test_padded_shard_names_what_is_wrong(args, match):
    with pytest.raises(ValueError, match=match):
        padded_shard(*args)


def test_outside_a_process_group_nothing_is_sharded():
    assert process_group() is None
    assert not has_sharded_parameters(TinyWorldModel())


def test_evaluate_distributed_must_be_a_bool():
    with pytest.raises(ValueError, match="`distributed` to be a bool but got 'yes'"):
        evaluate(TinyWorldModel(), make_probe_set(num_episodes=2), distributed="yes")


@pytest.mark.parametrize("device", ["cuda:99", "nonsense", 3.5])
def test_evaluate_refuses_a_device_it_cannot_use_naming_the_argument(device):
    from simgate_tracking import evaluate
    from simgate_tracking.toy import ToyWorld, make_probe_set

    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("this machine has a 100th GPU")
    with pytest.raises(ValueError, match="argument `device` to be a device this process can use"):
        evaluate(ToyWorld().rollout, make_probe_set(num_episodes=2, horizon=3), device=device)


def test_an_error_inside_the_rollout_keeps_its_type_and_says_where_it_came_from():
    import sys

    from simgate_tracking.toy import make_probe_set as toy_probe_set

    def broken(context, actions, generator=None):
        raise KeyError("latent")

    with pytest.raises(KeyError) as caught:
        evaluate(broken, toy_probe_set(num_episodes=2, horizon=3))
    if sys.version_info >= (3, 11):
        notes = caught.value.__notes__
        assert any("rollout(context, actions) on the probe episodes of seeds" in note for note in notes)
