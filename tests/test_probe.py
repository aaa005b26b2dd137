"""ProbeSet, the reset manifest: checked at construction, saved and loaded exactly, hashed stably, batched, sharded."""

import os
import subprocess
import sys

import pytest
import torch

from simgate_tracking import ProbeSet

N, BRANCHES, T, T0, C, H, W, A, M = 5, 3, 4, 2, 3, 8, 8, 2, 2


def fields(seed=0):
    """Every field of a small, valid probe set, all filled in."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(N, T, M, H, W, dtype=torch.bool)
    masks[:, :, 0, 1:3, 1:3] = True
    masks[:, :, 1, 5:7, 4:6] = True
    return {
        "context": torch.rand(N, T0, C, H, W, generator=g),
        "actions": torch.randn(N, BRANCHES, T, A, generator=g),
        "targets": torch.rand(N, BRANCHES, T, C, H, W, generator=g),
        "masks": masks,
        "visible": masks.flatten(3).any(dim=3),
        "outcomes": torch.rand(N, generator=g),
        "groups": torch.arange(N) % 2,
        "seeds": torch.arange(N) * 11,
    }


def with_field(name, value):
    kwargs = fields()
    kwargs[name] = value
    return kwargs


BAD = [
    ("context", torch.rand(T0, C, H, W), "(N, T0, C, H, W)", "shape (2, 3, 8, 8)"),
    ("context", [[0.0]], "torch.Tensor", "list"),
    ("context", torch.zeros(0, T0, C, H, W), "at least one episode", "N = 0"),
    ("context", torch.zeros(N, 0, C, H, W), "T0 >= 1", "(5, 0, 3, 8, 8)"),
    ("context", torch.zeros(N, T0, C, H, W, dtype=torch.int32), "float in [0, 1] or uint8", "torch.int32"),
    ("context", torch.full((N, T0, C, H, W), float("nan")), "only finite values", "NaN or Inf"),
    ("context", torch.full((N, T0, C, H, W), 2.0), "values in [0, 1]", "values from 2 to 2"),
    ("targets", torch.rand(N, BRANCHES, T, C, H), "(N, K+1, T, C, H, W)", "shape (5, 3, 4, 3, 8)"),
    ("targets", torch.rand(N + 1, BRANCHES, T, C, H, W), "like `context`", "shape (6, 3, 4, 3, 8, 8)"),
    ("targets", torch.rand(N, BRANCHES, T, C, H, W + 1), "(5, K+1, T, 3, 8, 8)", "(5, 3, 4, 3, 8, 9)"),
    ("targets", torch.rand(N, 1, T, C, H, W), "K >= 1 counterfactual", "but got 1"),
    ("targets", torch.rand(N, BRANCHES, 1, C, H, W), "T >= 2 future steps", "T = 1"),
    ("targets", torch.rand(N, BRANCHES, T, C, H, W).index_fill(0, torch.tensor(1), float("nan")), "finite", "NaN"),
    ("targets", torch.ones(N, BRANCHES, T, C, H, W).neg(), "values in [0, 1]", "values from -1"),
    ("actions", torch.randn(N, BRANCHES, T), "(N, K+1, T, A) = (5, 3, 4, A)", "shape (5, 3, 4)"),
    ("actions", torch.randn(N, BRANCHES + 1, T, A), "(N, K+1, T, A) = (5, 3, 4, A)", "shape (5, 4, 4, 2)"),
    ("actions", torch.randn(N, BRANCHES, T, 0), "A >= 1", "shape (5, 3, 4, 0)"),
    ("actions", torch.zeros(N, BRANCHES, T, A, dtype=torch.bool), "real or integer", "torch.bool"),
    ("actions", torch.full((N, BRANCHES, T, A), float("inf")), "only finite values", "NaN or Inf"),
    ("actions", "left", "torch.Tensor", "str"),
    ("masks", torch.zeros(N, T, M, H, W), "bool tensor", "torch.float32"),
    ("masks", torch.zeros(N, T + 1, M, H, W, dtype=torch.bool), "(N, T, M, H, W) = (5, 4, M, 8, 8)", "(5, 5, 2, 8, 8)"),
    ("masks", torch.zeros(N, T, M, H, dtype=torch.bool), "(N, T, M, H, W)", "shape (5, 4, 2, 8)"),
    ("masks", torch.zeros(N, T, 0, H, W, dtype=torch.bool), "M >= 1", "(5, 4, 0, 8, 8)"),
    ("visible", torch.ones(N, T, M + 1, dtype=torch.bool), "(N, T, M) = (5, 4, 2)", "shape (5, 4, 3)"),
    ("visible", torch.ones(N, T, M), "bool tensor", "torch.float32"),
    ("outcomes", torch.rand(N + 1), "(N,) = (5,) or (N, K+1) = (5, 3)", "shape (6,)"),
    ("outcomes", torch.rand(N, 2), "(N, K+1) = (5, 3)", "shape (5, 2)"),
    ("outcomes", torch.tensor([0.0, 1.0, float("nan"), 0.0, 1.0]), "only finite values", "NaN or Inf"),
    ("groups", torch.zeros(N, 1, dtype=torch.long), "(N,) = (5,)", "shape (5, 1)"),
    ("groups", torch.zeros(N), "integer tensor", "torch.float32"),
    ("groups", torch.tensor([0, 1, -1, 0, 1]), "policy ids >= 0", "an id of -1"),
    ("seeds", torch.arange(N - 1), "(N,) = (5,)", "shape (4,)"),
    ("seeds", torch.zeros(N, dtype=torch.bool), "integer tensor", "torch.bool"),
]


@pytest.mark.parametrize(("field", "value", "expected", "got"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_field_raises_naming_field_expected_and_given(field, value, expected, got):
    with pytest.raises(ValueError, match=r"ProbeSet: expected `(\w+)`") as info:
        ProbeSet(**with_field(field, value))
    message = str(info.value)
    assert f"`{field}`" in message and expected in message and got in message, message


@pytest.mark.parametrize("hidden", ["visible", "masks"])
def test_masks_that_never_show_an_object_are_refused(hidden):
    kwargs = fields()
    kwargs[hidden] = torch.zeros_like(kwargs[hidden])
    with pytest.raises(ValueError, match="expected `masks` to show an object at some visible step but got none"):
        ProbeSet(**kwargs)


def test_visible_without_masks_is_refused():
    kwargs = with_field("masks", None)
    with pytest.raises(ValueError, match="`visible` to come with `masks`"):
        ProbeSet(**kwargs)


def test_valid_probe_set_keeps_its_fields():
    kwargs = fields()
    probe = ProbeSet(**kwargs, name="tiny")
    assert (len(probe), probe.num_branches, probe.horizon, probe.frame_shape, probe.action_dim) == (
        N,
        3,
        T,
        (3, 8, 8),
        2,
    )
    for name, value in kwargs.items():
        assert torch.equal(getattr(probe, name), value), name
    assert probe.name == "tiny" and "episodes=5" in repr(probe)


def test_defaults_fill_visibility_and_seeds():
    kwargs = fields()
    kwargs["masks"][0, 0, 1] = False
    probe = ProbeSet(kwargs["context"], kwargs["actions"], kwargs["targets"], masks=kwargs["masks"])
    assert torch.equal(probe.seeds, torch.arange(N))
    assert probe.visible.dtype == torch.bool and not probe.visible[0, 0, 1] and probe.visible[0, 0, 0]


def test_uint8_frames_and_per_branch_outcomes_are_accepted():
    kwargs = with_field("targets", (fields()["targets"] * 255).to(torch.uint8))
    kwargs["outcomes"] = torch.ones(N, BRANCHES, dtype=torch.bool)
    probe = ProbeSet(**kwargs)
    assert probe.targets.dtype == torch.uint8
    assert torch.equal(probe.reference_outcomes, torch.ones(N, dtype=torch.bool))


def test_save_load_round_trips_exactly(tmp_path):
    probe = ProbeSet(**fields(), name="tiny")
    probe.save(tmp_path / "probe.pt")
    loaded = ProbeSet.load(tmp_path / "probe.pt")
    for name in fields():
        original, copy = getattr(probe, name), getattr(loaded, name)
        assert copy.dtype == original.dtype and torch.equal(copy, original), name
    assert loaded.name == "tiny"
    assert loaded.manifest_hash == probe.manifest_hash and loaded == probe


def test_save_load_keeps_absent_fields_absent(tmp_path):
    kwargs = fields()
    probe = ProbeSet(kwargs["context"], kwargs["actions"], kwargs["targets"])
    probe.save(tmp_path / "probe.pt")
    loaded = ProbeSet.load(str(tmp_path / "probe.pt"))
    assert loaded.masks is None and loaded.outcomes is None and loaded.groups is None
    assert loaded.manifest_hash == probe.manifest_hash


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_never_executes_code_from_the_file(tmp_path):
    marker = tmp_path / "executed"
    torch.save({"format_version": 1, "context": RunsCode(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="never runs code from the file"):
        ProbeSet.load(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a probe set", b""])
def test_load_refuses_a_file_that_is_not_a_probe_set(tmp_path, content):
    (tmp_path / "junk.pt").write_bytes(content)
    with pytest.raises(ValueError, match="junk.pt' to be a ProbeSet written by ProbeSet.save"):
        ProbeSet.load(tmp_path / "junk.pt")


def test_load_refuses_tensors_that_are_not_a_probe_set(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="to be a ProbeSet written by ProbeSet.save"):
        ProbeSet.load(tmp_path / "model.pt")


def test_load_refuses_a_newer_format_and_a_corrupt_file(tmp_path):
    ProbeSet(**fields()).save(tmp_path / "probe.pt")
    payload = torch.load(tmp_path / "probe.pt", weights_only=True)
    torch.save({**payload, "format_version": 99}, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match="format version <= 1 but got 99"):
        ProbeSet.load(tmp_path / "newer.pt")
    payload["targets"][0, 0, 0, 0, 0, 0] = 0.5
    torch.save(payload, tmp_path / "corrupt.pt")
    with pytest.raises(ValueError, match="is corrupt: its manifest hash does not match"):
        ProbeSet.load(tmp_path / "corrupt.pt")


def test_manifest_hash_ignores_the_label_but_sees_every_field():
    base = ProbeSet(**fields())
    assert ProbeSet(**fields(), name="other").manifest_hash == base.manifest_hash
    for name, value in fields().items():
        changed = value.clone().view(-1)
        if changed.dtype == torch.bool:
            changed[0] = ~changed[0]
        else:
            changed[0] = (changed[0] + 0.5) % 1 if changed.is_floating_point() else changed[0] + 1
        changed = changed.view_as(value)
        kwargs = with_field(name, changed)
        if name == "masks":
            kwargs["visible"] = None
        assert ProbeSet(**kwargs).manifest_hash != base.manifest_hash, name


def test_manifest_hash_is_the_same_in_another_process(tmp_path):
    probe = ProbeSet(**fields())
    probe.save(tmp_path / "probe.pt")
    code = f"from simgate_tracking import ProbeSet; print(ProbeSet.load({str(tmp_path / 'probe.pt')!r}).manifest_hash)"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == probe.manifest_hash
    assert len(probe.manifest_hash) == 64


@pytest.mark.parametrize("batch_size", [1, 2, 5, 8])
def test_batches_cover_every_episode_in_order(batch_size):
    probe = ProbeSet(**fields())
    batches = list(probe.batches(batch_size))
    assert len(batches) == probe.num_batches(batch_size) == -(-N // batch_size)
    assert torch.equal(torch.cat([b.index for b in batches]), torch.arange(N))
    for batch in batches:
        assert len(batch) <= batch_size
        assert torch.equal(batch.targets, probe.targets[batch.index])
        assert torch.equal(batch.masks, probe.masks[batch.index]) and torch.equal(batch.seeds, probe.seeds[batch.index])


def test_batches_of_chosen_episodes_keep_their_order():
    probe = ProbeSet(**fields())
    batches = list(probe.batches(2, indices=torch.tensor([4, 0, 3])))
    assert [b.index.tolist() for b in batches] == [[4, 0], [3]]
    assert torch.equal(batches[0].context, probe.context[[4, 0]])


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_bad_batch_size_is_refused(batch_size):
    with pytest.raises(ValueError, match="`batch_size` to be a positive int"):
        list(ProbeSet(**fields()).batches(batch_size))


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_shards_split_the_episodes_between_ranks(world_size):
    probe = ProbeSet(**fields())
    shards = [probe.shard(rank, world_size) for rank in range(world_size)]
    assert sorted(torch.cat(shards).tolist()) == list(range(N))
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1


@pytest.mark.parametrize(
    ("rank", "world_size", "message"),
    [(2, 2, "0 <= rank < world_size"), (-1, 2, "0 <= rank < world_size"), (0, 0, "0 <= rank"), (0, 6, "5 episode")],
)
def test_bad_shard_is_refused(rank, world_size, message):
    with pytest.raises(ValueError, match=message):
        ProbeSet(**fields()).shard(rank, world_size)


def test_subset_picks_episodes_in_the_given_order():
    probe = ProbeSet(**fields())
    picked = probe.subset([3, 1])
    assert len(picked) == 2 and torch.equal(picked.targets, probe.targets[[3, 1]])
    assert torch.equal(picked.seeds, probe.seeds[[3, 1]]) and picked.manifest_hash != probe.manifest_hash
