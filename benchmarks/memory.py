"""Memory: the scorecard's state size against the probe-set size, and the peak memory one gate check adds."""

from __future__ import annotations

import ctypes
import gc
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile
from torchmetrics import Metric

from benchmarks.bundle import Bundle, Size
from simgate_tracking import ProbeSet
from simgate_tracking.rollout import ProbeRunner

_PROC = Path("/proc/self")


def state_bytes(metric: Metric) -> int:
    """Bytes of every metric state of ``metric`` and its child metrics (list states: every kept tensor)."""
    total = 0
    for module in metric.modules():
        if not isinstance(module, Metric):
            continue
        for name in module._defaults:
            value = getattr(module, name)
            kept = value if isinstance(value, list) else [value]
            total += sum(x.numel() * x.element_size() for x in kept if isinstance(x, Tensor))
    return total


def scorecard_state_bytes(bundle: Bundle, updates: int) -> int:
    """State bytes of a scorecard after ``updates`` updates with the bundle (its episodes times ``updates``)."""
    card = ProbeRunner(_probe_set(bundle)).make_scorecard().to(bundle.preds.device)
    for _ in range(updates):
        bundle.feed(card)
    return state_bytes(card)


def _probe_set(bundle: Bundle) -> ProbeSet:
    """The bundle's real futures, every take, as a probe set; action rows carry (episode, branch) for replay."""
    b, k, t = bundle.preds.shape[:3]
    actions = torch.zeros(b, k, t, 2)
    actions[..., 0] = torch.arange(b, dtype=torch.float32).view(b, 1, 1)
    actions[..., 1] = torch.arange(k, dtype=torch.float32).view(1, k, 1)
    return ProbeSet(
        context=bundle.real_reference[:, :1].cpu(),
        actions=actions,
        targets=bundle.target.cpu(),
        masks=bundle.masks.cpu(),
        visible=bundle.visible.cpu(),
        outcomes=bundle.task_real.cpu(),
    )


def replay_model(probe: ProbeSet) -> Callable[..., Tensor]:
    """A world model that allocates nothing but its output: reality plus per-episode seeded noise."""

    def rollout(context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        episode, branch = actions[:, 0, 0].long().cpu(), actions[:, 0, 1].long().cpu()
        frames = probe.targets[episode, branch].to(context.device)
        for row, g in enumerate(generator or []):
            frames[row].add_(torch.randn(frames[row].shape, generator=g, device=g.device), alpha=0.01)
        return frames.clamp_(0, 1)

    return rollout


@dataclass(frozen=True)
class PeakMemory:
    """Peak memory one gate check adds, next to the bytes of one batch of rollouts."""

    added_bytes: int | None  # None where the platform gives no way to read it
    batch_bytes: int
    method: str
    resident_bytes: int | None = None  # CPU: growth of the peak resident set, allocator slack included


def _resident(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+) kB", (_PROC / "status").read_text())
    return int(match.group(1)) * 1024 if match else 0


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc), so memory the check touches shows as new resident pages."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def resident_peak(call: Callable[[], object]) -> int | None:
    """Growth of the peak resident set size during ``call`` (Linux: VmHWM reset first), or None elsewhere."""
    if not (_PROC / "clear_refs").exists():
        return None
    _release_free_heap()
    (_PROC / "clear_refs").write_text("5")  # resets the peak resident set size (VmHWM) to the current one
    before = _resident("VmRSS")
    call()
    return _resident("VmHWM") - before


def tensor_peak(call: Callable[[], object]) -> int:
    """Peak bytes of CPU tensors allocated during ``call`` and alive at once, from torch.profiler's allocator events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and "CPU" in str(event.device_type())
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def cuda_peak(call: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of CUDA memory allocated during ``call`` above what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def gate_check_peak(bundle: Bundle, size: Size, batch_size: int) -> PeakMemory:
    """Peak memory added by one gate check as the callback runs it: rollouts of every probe episode, scorecard.

    The world model only replays reality, so what is measured is the gate's own memory, not the model's.
    """
    device = bundle.preds.device
    probe = _probe_set(bundle)
    runner = ProbeRunner(probe, batch_size=batch_size, task_fn=lambda frames: frames.mean(dim=(1, 2, 3, 4)) > 0.1)
    model = replay_model(probe)

    def check() -> None:
        card = runner.make_scorecard(episode_scores=True).to(device)
        with torch.no_grad():
            runner.run(model, card, device)
        card.compute()
        card.episode_scores()

    check()  # warm-up: lazy initialisation and first-call caches are not the check's memory
    batch_bytes = size.rollout_bytes * min(batch_size, size.episodes) // size.episodes
    if device.type == "cuda":
        return PeakMemory(cuda_peak(check, device), batch_bytes, "torch.cuda.max_memory_allocated")
    method = "peak of live CPU tensor bytes (torch.profiler allocator events)"
    return PeakMemory(tensor_peak(check), batch_bytes, method, resident_bytes=resident_peak(check))
