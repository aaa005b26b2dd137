"""Probe sets larger than memory: opened memory-mapped, checked as strictly, written an episode at a time."""

import os
import subprocess
import sys
import zipfile

import pytest
import torch

from simgate_tracking import ProbeSet
from simgate_tracking.probe_writer import ProbeWriter

N, BRANCHES, T, C, H, W = 5, 3, 4, 3, 8, 8


def episodes():
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (N, BRANCHES, T, C, H, W), dtype=torch.uint8, generator=g)
    masks = torch.zeros(N, T, 2, H, W, dtype=torch.bool)
    masks[:, :, 0, 2:4, 2:4] = True
    masks[1, :, 1, 5:7, 5:7] = True  # only episode 1 sees a second object
    return {
        "context": real[:, 0, :1].clone(),
        "actions": torch.randn(N, BRANCHES, T, 2, generator=g),
        "targets": real,
        "masks": masks,
        "visible": masks.flatten(-2).any(-1),
        "outcomes": torch.rand(N, BRANCHES, generator=g) > 0.5,
        "seeds": torch.arange(10, 10 + N),
    }


@pytest.fixture
def saved(tmp_path):
    probe = ProbeSet(**episodes(), name="tiny")
    probe.save(tmp_path / "probe.pt")
    return probe, tmp_path / "probe.pt"


def test_a_mapped_probe_set_equals_the_loaded_one_and_views_the_file(saved):
    probe, path = saved
    mapped = ProbeSet.load(path, mmap=True)
    assert mapped == probe and mapped.manifest_hash == probe.manifest_hash
    assert all(torch.equal(getattr(mapped, f), getattr(probe, f)) for f in ("context", "targets", "masks", "seeds"))
    # the frames are the file's bytes, not a copy: the file's content at the storage's address
    data = path.read_bytes()
    start = data.find(probe.targets.numpy().tobytes())
    assert start > 0 and mapped.targets.untyped_storage().nbytes() == probe.targets.numel()


def test_verification_reads_the_content_unless_told_not_to(saved, tmp_path):
    probe, path = saved
    stored = torch.load(path, weights_only=True)
    stored["targets"] = stored["targets"].flip(0).contiguous()  # other episodes' frames under the old hash
    torch.save(stored, tmp_path / "corrupt.pt")
    with pytest.raises(ValueError, match="corrupt.pt.*manifest hash does not match"):
        ProbeSet.load(tmp_path / "corrupt.pt", mmap=True)
    trusted = ProbeSet.load(tmp_path / "corrupt.pt", mmap=True, verify=False)
    assert trusted.manifest_hash == probe.manifest_hash  # the stored hash, trusted as asked
    assert not torch.equal(trusted.targets, probe.targets)


@pytest.mark.parametrize(("flag", "value"), [("mmap", "yes"), ("verify", 0)])
def test_flags_must_be_bools(saved, flag, value):
    with pytest.raises(ValueError, match=rf"`{flag}` to be a bool but got {value!r}"):
        ProbeSet.load(saved[1], **{flag: value})


def test_the_load_time_checks_hold_for_a_mapped_file(saved, tmp_path):
    stored = torch.load(saved[1], weights_only=True)
    bomb = {**stored, "context": torch.zeros(1, 1, C, H, W).expand(N, 1, C, H, W)}
    torch.save(bomb, tmp_path / "bomb.pt")
    with pytest.raises(ValueError, match=r"bomb.pt.*`context` to be stored contiguously"):
        ProbeSet.load(tmp_path / "bomb.pt", mmap=True)
    torch.save({k: v for k, v in stored.items() if k != "manifest_hash"}, tmp_path / "nohash.pt")
    with pytest.raises(ValueError, match=r"nohash.pt.*manifest hash"):
        ProbeSet.load(tmp_path / "nohash.pt", mmap=True, verify=False)
    nan = {**stored, "actions": torch.full_like(stored["actions"], float("nan"))}
    torch.save(nan, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan.pt.*`actions` to hold only finite values"):
        ProbeSet.load(tmp_path / "nan.pt", mmap=True, verify=False)


PEAK = """
import re, sys
from simgate_tracking import ProbeSet

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

open("/proc/self/clear_refs", "w").write("5")
before, file_pages = status("VmRSS"), status("RssFile")
probe = ProbeSet.load(sys.argv[1], mmap=True)
opened = status("VmHWM") - before
for batch in probe.batches(4, probe.shard(0, 8)):
    batch.targets.sum()
print(opened, status("RssFile") - file_pages)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's resettable peak memory")
def test_opening_mapped_peaks_at_a_slice_and_a_shard_maps_its_own_pages(tmp_path):
    path = tmp_path / "big.pt"  # 100 MB of uint8 frames in 32 episodes
    frames = torch.randint(0, 256, (32, 4, 16, 3, 128, 128), dtype=torch.uint8, generator=torch.Generator())
    ProbeSet(context=frames[:, 0, :1].clone(), actions=torch.zeros(32, 4, 16, 1), targets=frames).save(path)
    size = os.path.getsize(path)
    del frames
    out = subprocess.run([sys.executable, "-c", PEAK, str(path)], check=True, capture_output=True, text=True)
    opened, mapped = (int(v) for v in out.stdout.split())
    # the checks and the hash read every byte, a 16 MiB slice at a time, each dropped once read
    assert opened < 0.35 * size, f"opening grew the process by {opened / size:.2f}x the file"
    # one shard of eight is 1/8 of the frames; the kernel maps file pages in folios of up to 2 MiB around each read
    assert mapped < 0.35 * size, f"reading one shard of eight mapped {mapped / size:.2f}x the file"


def test_the_writer_makes_the_file_save_makes_with_objects_padded(tmp_path):
    fields = episodes()
    reference = ProbeSet(**fields, name="tiny")
    with ProbeWriter(tmp_path / "written.pt", name="tiny") as writer:
        for i in range(N):
            objects = 2 if i == 1 else 1  # the others never saw a second object: padded with False
            writer.add(
                context=fields["context"][i],
                actions=fields["actions"][i],
                targets=fields["targets"][i],
                masks=fields["masks"][i, :, :objects],
                visible=fields["visible"][i, :, :objects],
                outcomes=fields["outcomes"][i],
                seed=int(fields["seeds"][i]),
            )
    assert zipfile.ZipFile(tmp_path / "written.pt").testzip() is None  # every record's CRC-32 is right
    assert torch.load(tmp_path / "written.pt", weights_only=True)["manifest_hash"] == reference.manifest_hash
    written = ProbeSet.load(tmp_path / "written.pt")
    assert written == reference and torch.equal(written.masks, reference.masks) and written.name == "tiny"
    assert [p.name for p in tmp_path.iterdir()] == ["written.pt"]  # no scratch files left


def test_the_writer_refuses_episodes_that_disagree_and_leaves_nothing_on_failure(tmp_path):
    fields = episodes()
    path = tmp_path / "bad.pt"
    with pytest.raises(ValueError, match=r"`targets` of episode 1 to have episode 0's shape \(3, 4, 3, 8, 8\)"):
        with ProbeWriter(path) as writer:
            writer.add(context=fields["context"][0], actions=fields["actions"][0], targets=fields["targets"][0])
            writer.add(context=fields["context"][1], actions=fields["actions"][1], targets=fields["targets"][1, :2])
    with pytest.raises(ValueError, match=r"`outcomes` for every episode or none but episode 1 lacks it"):
        with ProbeWriter(path) as writer:
            writer.add(
                context=fields["context"][0],
                actions=fields["actions"][0],
                targets=fields["targets"][0],
                outcomes=fields["outcomes"][0],
            )
            writer.add(context=fields["context"][1], actions=fields["actions"][1], targets=fields["targets"][1])
    with pytest.raises(ValueError, match="at least one episode"):
        ProbeWriter(path).close()
    assert list(tmp_path.iterdir()) == []


def test_the_mmap_benchmark_runs_at_a_tiny_size():
    from benchmarks.mmap import mmap_benchmark

    run = mmap_benchmark(0.002, world=2, episode=(2, 4, 3, 16, 16))
    assert run.episodes >= 1 and run.peak > 0 and run.file_bytes > 1e6
    assert run.shard_bytes < run.file_bytes
