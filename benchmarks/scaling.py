"""Scoring throughput and peak memory against the number of probe episodes and of CPU processes.

Each process opens the same probe file memory-mapped and scores its own shard (every P-th episode), as a rank
under DDP does before the scorecard's few-kilobyte sync, which is left out. Throughput is the episodes of the
probe set over the slowest process's time to open and score; memory is each process's peak resident growth.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from benchmarks.mmap import mmap_benchmark, score_shard, write_probe_file

EPISODES = (64, 256, 1024)
PROCESSES = (1, 2, 4)
EPISODE = (3, 8, 3, 32, 32)  # K+1 branches, T steps, C, H, W: 74 KB of uint8 frames per episode


@dataclass(frozen=True)
class ScalingRow:
    """One probe-set size scored by one number of processes."""

    episodes: int
    processes: int
    threads: int
    file_bytes: int
    episodes_per_second: float
    peak_per_process: int


def measure_scaling(
    episodes: tuple[int, ...] = EPISODES, processes: tuple[int, ...] = PROCESSES, episode: tuple[int, ...] = EPISODE
) -> list[ScalingRow]:
    """Every (episodes, processes) pair; each process gets ``cores // processes`` threads (at least one)."""
    rows = []
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        for n in episodes:
            path = os.path.join(folder, f"probe-{n}.probe")
            size = write_probe_file(path, n, episode)
            if not rows:
                score_shard(path, 0, 1)  # the first scoring process compiles and caches the CPU kernel: not timed
            for p in processes:
                threads = max(1, cores // p)
                with ThreadPoolExecutor(p) as pool:  # threads only wait on the scoring processes
                    runs = list(pool.map(lambda rank: score_shard(path, rank, p, threads), range(p)))  # noqa: B023
                slowest = max(run.seconds for run in runs)
                peak = max(run.peak for run in runs)
                rows.append(ScalingRow(n, p, threads, size, n / slowest, peak))
    return rows


def scaling_table(rows: list[ScalingRow]) -> str:
    """The rows as a Markdown table, with the machine's core count in the heading."""
    lines = [
        f"## scoring throughput and memory ({os.cpu_count()} CPU cores; more processes than cores share them)",
        "",
        "| episodes | file MB | processes | threads each | episodes/s | peak MB per process |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.episodes} | {r.file_bytes / 1e6:.0f} | {r.processes} | {r.threads} | {r.episodes_per_second:.1f} | "
        f"{r.peak_per_process / 1e6:.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def run_scaling_options(scaling: bool, mmap_gb: float | None, world: int = 8) -> int:
    """``--scaling`` and ``--mmap-gb``: print their figures; exit status 0."""
    if mmap_gb:
        print(f"## a {mmap_gb:g} GB probe file, memory-mapped, one shard of {world} scored", flush=True)
        print(mmap_benchmark(mmap_gb, world).line(world), flush=True)
    if scaling:
        print(scaling_table(measure_scaling()), flush=True)
    return 0
