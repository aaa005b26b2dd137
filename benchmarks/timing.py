"""Wall-clock timing with warm-up, interleaved rounds and medians; CUDA work is synchronised before every reading."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a reading covers the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(
    cases: Mapping[str, Callable[[], object]],
    repeats: Mapping[str, int],
    device: torch.device,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds of every case over its repeats.

    Rounds interleave the cases (one call of each per round), so a slow spell on a shared machine hits every case
    alike and the ratios between them stay fair.

    Args:
        cases: Name -> a call to time.
        repeats: Name -> how many timed calls (at least 1).
        device: Where the work runs.
        warmup: Untimed calls of every case first (allocator, lazy initialisation, caches).
    """
    for call in cases.values():
        for _ in range(warmup):
            call()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_index in range(max(repeats[name] for name in cases)):
        for name, call in cases.items():
            if round_index >= repeats[name]:
                continue
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}
