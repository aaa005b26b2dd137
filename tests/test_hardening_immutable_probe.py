"""A probe set is fixed: a tensor changed in place after construction never yields a corrupt file or a stale hash."""

import copy
import pickle

import pytest
import torch

from simgate_tracking import ProbeSet

N, BRANCHES, T, C, H, W = 4, 2, 3, 3, 8, 8


def fields():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(N, T, 1, H, W, dtype=torch.bool)
    masks[..., 2:5, 2:5] = True
    return {
        "context": torch.rand(N, 1, C, H, W, generator=g),
        "actions": torch.randn(N, BRANCHES, T, 2, generator=g),
        "targets": torch.rand(N, BRANCHES, T, C, H, W, generator=g),
        "masks": masks,
        "outcomes": torch.tensor([1.0, 0.0, 2.0, 3.0]),
        "seeds": torch.arange(N) + 7,
    }


CHANGED = "unchanged since the probe set was built"


@pytest.mark.parametrize("name", ["context", "actions", "targets", "masks", "outcomes", "seeds"])
def test_a_tensor_changed_after_construction_is_refused_by_save_hash_and_batches(tmp_path, name):
    given = fields()
    probe = ProbeSet(**given)
    stale = probe.manifest_hash
    tensor = given[name]
    if tensor.dtype == torch.bool:
        tensor.logical_not_()
    else:
        tensor.mul_(0.5) if tensor.is_floating_point() else tensor.add_(1)
    with pytest.raises(ValueError, match=f"`{name}` {CHANGED}"):
        probe.save(tmp_path / "probe.pt")
    assert not (tmp_path / "probe.pt").exists()
    with pytest.raises(ValueError, match=CHANGED):
        _ = probe.manifest_hash  # never the stale one
    with pytest.raises(ValueError, match=CHANGED):
        next(probe.batches(2))
    assert stale not in repr(probe)


def test_a_change_through_the_probe_sets_own_attribute_or_a_view_is_refused():
    probe = ProbeSet(**fields())
    probe.targets[0, 0].add_(0.25)
    with pytest.raises(ValueError, match=f"`targets` {CHANGED}"):
        _ = probe.manifest_hash
    other = ProbeSet(**fields())
    other.context = torch.zeros_like(other.context)
    with pytest.raises(ValueError, match=f"`context` {CHANGED}"):
        _ = other.manifest_hash


def test_a_write_elsewhere_in_a_shared_buffer_is_told_apart_once_the_hash_is_known():
    given = fields()
    buffer = torch.cat([given["targets"], torch.zeros_like(given["targets"])])  # the probe set views the first half
    probe = ProbeSet(**{**given, "targets": buffer[:N]})
    known = probe.manifest_hash
    buffer[N:].fill_(0.5)  # the same storage, so the same version counter, but not the probe set's bytes
    assert probe.manifest_hash == known and len(list(probe.batches(2))) == 2
    buffer[:1].fill_(0.5)
    with pytest.raises(ValueError, match=f"`targets` {CHANGED}"):
        probe.save("never-written.pt")


def test_an_unchanged_probe_set_saves_loads_pickles_and_copies(tmp_path):
    probe = ProbeSet(**fields())
    probe.save(tmp_path / "probe.pt")
    again = ProbeSet.load(tmp_path / "probe.pt")
    assert again == probe
    for twin in (pickle.loads(pickle.dumps(probe)), copy.deepcopy(probe)):
        assert twin.manifest_hash == probe.manifest_hash
        assert len(list(twin.batches(3))) == 2


def test_a_probe_set_built_in_inference_mode_hashes_and_batches():
    with torch.inference_mode():
        made = {name: value.clone() for name, value in fields().items()}
        probe = ProbeSet(**made)
    assert probe.manifest_hash == ProbeSet(**fields()).manifest_hash
    assert len(list(probe.batches(2))) == 2


def test_take_still_returns_views_and_sees_a_change_of_its_probe_set():
    given = fields()
    del given["outcomes"]
    targets = torch.stack([given["targets"], given["targets"].flip(-1)], dim=1)  # R = 2 takes
    probe = ProbeSet(**{**given, "targets": targets, "masks": given["masks"][:, None].expand(-1, 2, -1, -1, -1, -1)})
    take = probe.take(1)
    assert take.targets.data_ptr() == probe.targets[:, 1].data_ptr()  # a view, no copy
    assert torch.equal(take.targets, targets[:, 1]) and take.manifest_hash != probe.take(0).manifest_hash
    targets.mul_(0.5)
    with pytest.raises(ValueError, match=CHANGED):
        _ = take.manifest_hash
    with pytest.raises(ValueError, match=CHANGED):
        probe.take(0)
