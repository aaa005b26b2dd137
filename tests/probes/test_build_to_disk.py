"""Building large probe sets: episodes written to disk as they are played, seeds played in worker processes."""

import pytest

pytest.importorskip("minigrid")

import torch

from simgate_tracking import ProbeSet
from simgate_tracking.probes import build_probe_set
from simgate_tracking.probes.minigrid import go_to_goal, minigrid_env_fn, minigrid_objects

DOORKEY = minigrid_env_fn("MiniGrid-DoorKey-5x5-v0")
SMALL = {"horizon": 4, "size": (16, 16), "mask_extractor": minigrid_objects}
SEEDS = [3, 1, 4, 5]


@pytest.fixture(scope="module")
def serial():
    return build_probe_set(DOORKEY, SEEDS, go_to_goal, **SMALL)


def test_written_to_disk_as_played_it_is_the_serial_probe_set_opened_mapped(serial, tmp_path):
    probe = build_probe_set(DOORKEY, SEEDS, go_to_goal, save_to=tmp_path / "doorkey.probe", **SMALL)
    assert probe == serial and probe.manifest_hash == serial.manifest_hash
    assert torch.equal(probe.masks, serial.masks) and torch.equal(probe.outcomes, serial.outcomes)
    assert ProbeSet.load(tmp_path / "doorkey.probe") == serial
    assert [p.name for p in tmp_path.iterdir()] == ["doorkey.probe"]  # the scratch files are gone


def test_seeds_played_in_two_worker_processes_give_the_serial_probe_set(serial, tmp_path):
    written = build_probe_set(DOORKEY, SEEDS, go_to_goal, workers=2, save_to=tmp_path / "p.probe", **SMALL)
    assert written.manifest_hash == serial.manifest_hash and written.seeds.tolist() == SEEDS


@pytest.mark.parametrize("workers", [0, 1.5, True])
def test_workers_must_be_a_positive_int(workers):
    with pytest.raises(ValueError, match="`workers`"):
        build_probe_set(DOORKEY, SEEDS, go_to_goal, workers=workers, **SMALL)
