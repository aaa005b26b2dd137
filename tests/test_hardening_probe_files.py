"""Probe files from elsewhere: a small file never becomes a memory bomb, and every refusal names the file."""

import os
import random
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from simgate_tracking import ProbeSet

N, BRANCHES, T, C, H, W = 4, 2, 3, 3, 8, 8


def fields():
    g = torch.Generator().manual_seed(0)
    return {
        "context": torch.rand(N, 1, C, H, W, generator=g),
        "actions": torch.randn(N, BRANCHES, T, 2, generator=g),
        "targets": torch.rand(N, BRANCHES, T, C, H, W, generator=g),
        "outcomes": torch.tensor([True, False, True, False]),
        "groups": torch.tensor([0, 1, 0, 1]),
    }


def payload(tmp_path):
    ProbeSet(**fields()).save(tmp_path / "good.pt")
    return torch.load(tmp_path / "good.pt", weights_only=True)


def refused(path, *words):
    with pytest.raises(ValueError) as info:
        ProbeSet.load(path)
    message = str(info.value)
    assert str(path) in message and all(word in message for word in words), message
    return message


def test_stride_zero_tensors_in_a_small_file_are_refused_before_any_copy(tmp_path):
    # 20000 episodes that a few bytes stand for: 630 MB of frames once copied, checked or hashed; the file holds
    # one episode
    episodes = 20000
    bomb = {
        "format_version": 1,
        "name": "bomb",
        "context": torch.zeros(1, 1, C, 64, 64).expand(episodes, 1, C, 64, 64),
        "actions": torch.zeros(1, BRANCHES, T, 1).expand(episodes, BRANCHES, T, 1),
        "targets": torch.zeros(1, BRANCHES, T, C, 64, 64).expand(episodes, BRANCHES, T, C, 64, 64),
        "manifest_hash": "0" * 64,
    }
    torch.save(bomb, tmp_path / "bomb.pt")
    assert os.path.getsize(tmp_path / "bomb.pt") < 400_000
    refused(tmp_path / "bomb.pt", "`context`", "stored contiguously", "strides (0,")


def test_self_overlapping_tensor_is_refused(tmp_path):
    stored = payload(tmp_path)
    base = torch.rand(N * C * H * W + 16)
    stored["context"] = base.as_strided((N, 1, C, H, W), (4, 4, H * W, W, 1))  # episodes overlap each other
    torch.save(stored, tmp_path / "overlap.pt")
    refused(tmp_path / "overlap.pt", "`context`", "stored contiguously")


def test_two_fields_sharing_bytes_are_refused_and_save_never_writes_them(tmp_path):
    stored = payload(tmp_path)
    ids = torch.tensor([0, 1, 0, 1])
    stored["groups"], stored["seeds"] = ids, ids
    torch.save(stored, tmp_path / "shared.pt")
    refused(tmp_path / "shared.pt", "`groups`", "stored apart from `seeds`")
    # a probe set built from one tensor for both fields, or from a slice of a larger buffer, saves each on its own
    buffer = torch.rand(N * C * H * W * 100)
    sliced = buffer[: N * C * H * W].view(N, 1, C, H, W)
    probe = ProbeSet(**{**fields(), "context": sliced, "seeds": ids, "groups": ids})
    probe.save(tmp_path / "built.pt")
    assert ProbeSet.load(tmp_path / "built.pt") == probe
    assert os.path.getsize(tmp_path / "built.pt") < buffer.numel() * 4 // 4  # not the whole buffer


def test_size_not_backed_by_the_files_bytes_is_refused(tmp_path, monkeypatch):
    stored = payload(tmp_path)
    stored["targets"]._bomb = True
    original = torch.Tensor._reduce_ex_internal

    def claims_more_than_it_holds(self, proto):
        rebuild, args = original(self, proto)
        if getattr(self, "_bomb", False):  # 10^6 episodes over the 4 the storage holds
            args = (args[0], args[1], (10**6, *args[2][1:]), args[3], *args[4:])
        return rebuild, args

    monkeypatch.setattr(torch.Tensor, "_reduce_ex_internal", claims_more_than_it_holds)
    torch.save(stored, tmp_path / "unbacked.pt")
    monkeypatch.undo()
    refused(tmp_path / "unbacked.pt")


def test_group_ids_are_capped_at_the_number_of_episodes():
    with pytest.raises(ValueError, match=r"expected `groups` to hold policy ids below the number of episodes N = 2"):
        ProbeSet(**{**{k: v[:2] for k, v in fields().items()}, "groups": torch.tensor([10**9, 0])})


def test_a_file_with_a_huge_group_id_is_refused_naming_file_and_field(tmp_path):
    stored = payload(tmp_path)
    stored["groups"] = torch.tensor([10**9, 0, 1, 0])
    torch.save(stored, tmp_path / "groups.pt")
    refused(tmp_path / "groups.pt", "`groups`", "an id of 1000000000")


def test_a_file_without_its_manifest_hash_is_refused(tmp_path):
    stored = payload(tmp_path)
    del stored["manifest_hash"]
    torch.save(stored, tmp_path / "nohash.pt")
    refused(tmp_path / "nohash.pt", "manifest hash")


@pytest.mark.parametrize("version", [True, -5, 0, 2, "1", 1.0, None])
def test_format_version_must_be_an_int_from_1_to_the_current_one(tmp_path, version):
    stored = payload(tmp_path)
    stored["format_version"] = version
    torch.save(stored, tmp_path / "version.pt")
    refused(tmp_path / "version.pt", "format version")


def test_random_byte_strings_always_give_the_file_naming_value_error(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "random.pt"
    for i in range(600):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        path.write_bytes(b"\x80\x02" + data if i % 2 else data)  # half look like a pickle
        with pytest.raises(ValueError, match="random.pt"):
            ProbeSet.load(path)


def test_a_missing_file_is_the_systems_error():
    with pytest.raises(FileNotFoundError):
        ProbeSet.load("/nonexistent/probe.pt")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("outcomes", torch.tensor([1j, 0j, 1j, 0j]), ("`outcomes`", "real numbers")),
        ("outcomes", ["yes", "no", "yes", "no"], ("`outcomes[0]`", "torch.Tensor", "str")),
        ("outcomes", "yes", ("`outcomes`", "tensor of numbers", "str")),
        ("groups", ["a", "b", "a", "b"], ("`groups`", "tensor of numbers")),
        ("actions", torch.randn(N, BRANCHES, T, 2, dtype=torch.complex64), ("`actions`", "real or integer")),
        ("context", torch.rand(N, 1, C, H, W, device="meta"), ("`context`", "meta")),
        ("targets", torch.rand(N, BRANCHES, T, C, H, W, device="meta"), ("`targets`", "meta")),
    ],
)
def test_complex_string_or_meta_fields_fail_early_naming_the_field(field, value, words):
    with pytest.raises(ValueError, match=r"^ProbeSet: expected") as info:
        ProbeSet(**{**fields(), field: value})
    assert all(word in str(info.value) for word in words), str(info.value)


def test_bad_fields_in_a_file_name_the_file(tmp_path):
    stored = payload(tmp_path)
    stored["outcomes"] = ["yes", "no", "yes", "no"]
    torch.save(stored, tmp_path / "strings.pt")
    refused(tmp_path / "strings.pt", "`outcomes")
    stored = payload(tmp_path)
    stored["name"] = OrderedDict(a=1)
    torch.save(stored, tmp_path / "name.pt")
    refused(tmp_path / "name.pt", "`name`")


LOAD_PEAK = """
import os, re, sys
from simgate_tracking import ProbeSet

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

open("/proc/self/clear_refs", "w").write("5")  # the high-water mark starts again from what the process holds now
before = status("VmRSS")
probe = ProbeSet.load(sys.argv[1])
print(os.path.getsize(sys.argv[1]), status("VmHWM") - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's resettable peak memory")
def test_load_peaks_at_about_the_file_size(tmp_path):
    path = tmp_path / "big.pt"  # 50 MB, 96% of it frames
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(64, 2, 8, 3, 64, 64, generator=g)
    ProbeSet(context=frames[:, 0, :1].clone(), actions=torch.zeros(64, 2, 8, 1), targets=frames).save(path)
    # a fresh process that only loads: its high-water mark grows by what the load takes
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PEAK, str(path)], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    size, grown = (int(v) for v in out.stdout.split())
    assert grown <= 1.2 * size, f"load grew the process by {grown / size:.2f}x the file size"
