"""A probe set larger than one rank's share: open it memory-mapped, score one rank's shard, report peak memory.

The file is written an episode at a time (:class:`~simgate_tracking.probe_writer.ProbeWriter`), so making it takes
no memory either. Scoring runs in a fresh process, whose peak resident memory (Linux ``VmHWM``, counted from what
the process held after its imports) is the figure: it must stay near one shard's bytes, not the file's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import torch

from simgate_tracking.probe_writer import ProbeWriter

EPISODE = (3, 16, 3, 128, 128)  # K+1 branches, T steps, C, H, W: 2.4 MB of uint8 frames per episode

SCORE_SHARD = r"""
import json, os, re, sys, time
import torch
from simgate_tracking import ProbeSet
from simgate_tracking.rollout import ProbeRunner

def status(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

def frozen(context, actions, generator=None):  # a world model that holds its last context frame
    last = context[:, -1:].float() / 255.0
    return last.expand(-1, actions.shape[1], -1, -1, -1).contiguous()

path, rank, world, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
start = time.perf_counter()
probe = ProbeSet.load(path, mmap=True)
opened = time.perf_counter() - start
loaded = status("VmHWM") - before
shard = probe.shard(rank, world)
runner = ProbeRunner(probe, batch_size=8)
scorecard = runner.make_scorecard()
with torch.no_grad():
    runner.run(frozen, scorecard, indices=shard)
scores = {k: float(v) for k, v in scorecard.compute().items() if k == "temporal_consistency"}
seconds = time.perf_counter() - start
shard_bytes = sum(x[shard].numel() * x.element_size() for x in (probe.context, probe.targets))
print(json.dumps({"episodes": len(shard), "seconds": seconds, "open_seconds": opened, "open_peak": loaded,
                  "peak": status("VmHWM") - before, "shard_bytes": shard_bytes, "scores": scores}))
"""


@dataclass(frozen=True)
class ShardRun:
    """One process scoring one shard of a memory-mapped probe file."""

    file_bytes: int
    episodes: int
    seconds: float
    open_seconds: float
    open_peak: int
    peak: int
    shard_bytes: int

    def line(self, world: int) -> str:
        """A line of the report."""
        return (
            f"file {self.file_bytes / 1e9:.2f} GB, shard 1 of {world}: {self.episodes} episodes, "
            f"{self.shard_bytes / 1e6:.0f} MB of frames; open (checks + hash) {self.open_seconds:.1f} s peaking at "
            f"+{self.open_peak / 1e6:.0f} MB; open and score {self.seconds:.1f} s "
            f"({self.episodes / self.seconds:.1f} episodes/s), peak +{self.peak / 1e6:.0f} MB resident"
        )


def write_probe_file(path: str, num_episodes: int, episode: tuple[int, ...] = EPISODE) -> int:
    """Write ``num_episodes`` random uint8 episodes to ``path`` an episode at a time; returns the file's bytes."""
    branches, steps, c, h, w = episode
    g = torch.Generator().manual_seed(0)
    with ProbeWriter(path, name="large") as writer:
        for i in range(num_episodes):
            frames = torch.randint(0, 256, (branches, steps, c, h, w), dtype=torch.uint8, generator=g)
            writer.add(
                context=frames[0, :1], actions=torch.randn(branches, steps, 2, generator=g), targets=frames, seed=i
            )
    return os.path.getsize(path)


def score_shard(path: str, rank: int, world: int, threads: int = 1) -> ShardRun:
    """Score shard ``rank`` of ``world`` of the probe file in a fresh process and return its figures."""
    out = subprocess.run(
        [sys.executable, "-c", SCORE_SHARD, path, str(rank), str(world), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    found.pop("scores")
    return ShardRun(file_bytes=os.path.getsize(path), **found)


def mmap_benchmark(gigabytes: float, world: int = 8, episode: tuple[int, ...] = EPISODE) -> ShardRun:
    """Write a probe file of about ``gigabytes`` in the temp folder, score one shard of ``world``, delete the file."""
    per_episode = int(torch.Size(episode).numel()) + int(torch.Size(episode[2:]).numel())
    num_episodes = max(world, round(gigabytes * 1e9 / per_episode))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "large.probe")
        write_probe_file(path, num_episodes, episode)
        return score_shard(path, 0, world, threads=torch.get_num_threads())
