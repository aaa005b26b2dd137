"""Speed of every update against the memory floor, a naive loop and torchmetrics SSIM, on one rollout bundle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F  # noqa: N812
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from benchmarks import naive
from benchmarks.bundle import Bundle, Size
from benchmarks.timing import time_cases
from simgate_tracking.metrics import (
    Controllability,
    DeltaPSNR,
    ObjectPersistence,
    ResetReproducibility,
    SimulatorScorecard,
    TaskValidity,
    TemporalConsistency,
    VisualFidelity,
)

AXES_UPDATE = "scorecard: 5 axes + delta-PSNR"
TENSOR_PATH = "scorecard: the same, tensor path"
GATE_FORM = "scorecard: the same, as the gate feeds it"
FULL_UPDATE = "scorecard: + frame quality"
FLOOR = "floor: squared-difference sum"
NAIVE = "naive per-frame loop"
SSIM = "torchmetrics SSIM"


@dataclass(frozen=True)
class SpeedResult:
    """Median seconds per case for one bundle, and the agreement of the naive loop with the scorecard."""

    size: Size
    device: str
    dtype: str
    seconds: dict[str, float]
    naive_gap: float | None  # largest |naive - scorecard| over the scores; None when the naive loop was skipped

    @property
    def axes(self) -> float:
        """Seconds of the scorecard's update without frame quality: what the targets judge."""
        return self.seconds[AXES_UPDATE]

    def frames_per_second(self, case: str) -> float:
        """Rollout frames (every branch) scored per second by ``case``."""
        return self.size.frames / self.seconds[case]


def _update(card: SimulatorScorecard, bundle: Bundle) -> Callable[[], None]:
    def call() -> None:
        bundle.feed(card)

    return call


def _as_the_gate_feeds_it(card: SimulatorScorecard, bundle: Bundle) -> Callable[[], None]:
    """The callback's two calls: the branches apart, as a world model returns them, then the reset pass alone."""
    reference, counterfactual = bundle.preds[:, 0].contiguous(), bundle.preds[:, 1:].contiguous()

    def call() -> None:
        card.update(
            (reference, counterfactual),
            bundle.target,
            masks=bundle.masks,
            visible=bundle.visible,
            task_pred=bundle.task_pred,
            task_real=bundle.task_real,
        )
        card.update_reset(reference, bundle.second, bundle.target[:, 0])

    return call


def axes_only(card: SimulatorScorecard) -> SimulatorScorecard:
    """The scorecard with its frame-quality child switched off, to time the simulator axes on their own."""
    card.visual_fidelity.update = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return card


def _against_target(preds: Tensor, target: Tensor) -> Tensor:
    """``preds`` as ``target``'s shape: broadcast over the takes when ``target`` holds R real takes (no copy)."""
    return preds.unsqueeze(1).expand_as(target) if target.ndim == preds.ndim + 1 else preds


def floor_whole(bundle: Bundle) -> Tensor:
    """One read of every input: squared-difference sums over whole tensors, as a user would write them.

    With R real takes, ``target`` (every take) is read once: the model against each take.
    """
    total = F.mse_loss(_against_target(bundle.preds, bundle.target), bundle.target, reduction="sum")
    total = total + F.mse_loss(bundle.second, bundle.real_reference, reduction="sum")
    return total + bundle.masks.sum()


def floor_by_episode(bundle: Bundle) -> Tensor:
    """The same read, episode by episode, so temporaries stay small (on CPU, large ones are page-faulted in)."""
    total = bundle.masks.sum().float()
    reference = bundle.real_reference
    for b in range(bundle.preds.shape[0]):
        y = bundle.target[b : b + 1]
        total = total + F.mse_loss(_against_target(bundle.preds[b : b + 1], y), y, reduction="sum")
        total = total + F.mse_loss(bundle.second[b], reference[b], reduction="sum")
    return total


def ssim(bundle: Bundle) -> Tensor:
    """torchmetrics' SSIM over every frame of every branch: the frame-quality score the axes are compared with."""
    frames = bundle.preds.flatten(0, 2)
    return structural_similarity_index_measure(frames, bundle.target.flatten(0, 2), data_range=1.0)


def axis_cases(bundle: Bundle) -> dict[str, Callable[[], object]]:
    """One ``update`` of every metric class on the bundle."""
    p, y = bundle.preds, bundle.target
    metrics = {
        "controllability": Controllability(),
        "temporal_consistency": TemporalConsistency(),
        "object_persistence": ObjectPersistence(),
        "reset_reproducibility": ResetReproducibility(),
        "task_validity": TaskValidity(),
        "delta_psnr": DeltaPSNR(),
        "visual_fidelity (PSNR, SSIM)": VisualFidelity(),
    }
    device = p.device
    for metric in metrics.values():
        metric.to(device)
    return {
        "controllability": lambda: metrics["controllability"].update(p, y),
        "temporal_consistency": lambda: metrics["temporal_consistency"].update(p[:, 0], y[:, 0]),
        "object_persistence": lambda: metrics["object_persistence"].update(
            p[:, 0], y[:, 0], bundle.masks, bundle.visible
        ),
        "reset_reproducibility": lambda: metrics["reset_reproducibility"].update(p[:, 0], bundle.second, y[:, 0]),
        "task_validity": lambda: metrics["task_validity"].update(bundle.task_pred, bundle.task_real),
        "delta_psnr": lambda: metrics["delta_psnr"].update(p, y),
        "visual_fidelity (PSNR, SSIM)": lambda: metrics["visual_fidelity (PSNR, SSIM)"].update(p, y),
    }


def naive_gap(bundle: Bundle) -> float:
    """Largest difference between the naive loop's scores and the scorecard's on the same bundle."""
    card = SimulatorScorecard().to(bundle.preds.device)
    _update(card, bundle)()
    scores = {name: float(value) for name, value in card.compute().items() if name not in ("psnr", "ssim")}
    reference = naive.scorecard(bundle)
    return max(abs(reference[name] - scores[name]) for name in reference)


def measure_speed(bundle: Bundle, size: Size, repeats: int, slow_repeats: int, with_naive: bool = True) -> SpeedResult:
    """Time every case on ``bundle``; the naive loop and SSIM (slow) get ``slow_repeats`` runs, the rest ``repeats``."""
    device = bundle.preds.device
    cases: dict[str, Callable[[], object]] = {
        FLOOR + " (whole)": lambda: floor_whole(bundle),
        FLOOR + " (by episode)": lambda: floor_by_episode(bundle),
        **axis_cases(bundle),
        AXES_UPDATE: _update(axes_only(SimulatorScorecard()).to(device), bundle),
        FULL_UPDATE: _update(SimulatorScorecard().to(device), bundle),
        SSIM: lambda: ssim(bundle),
    }
    cases[GATE_FORM] = _as_the_gate_feeds_it(axes_only(SimulatorScorecard()).to(device), bundle)
    if device.type == "cpu":
        # the same update without the compiled kernel: what the kernel saves, and the speed where numba is missing
        cases[TENSOR_PATH] = _update(axes_only(SimulatorScorecard(cpu_kernel=False)), bundle)
    if with_naive:
        cases[NAIVE] = lambda: naive.scorecard(bundle)
    counts = {name: slow_repeats if name in (NAIVE, SSIM, FULL_UPDATE) or "SSIM" in name else repeats for name in cases}
    seconds = time_cases(cases, counts, device)
    # the floor is the faster of the two ways to read the inputs once
    seconds[FLOOR] = min(seconds[FLOOR + " (whole)"], seconds[FLOOR + " (by episode)"])
    return SpeedResult(
        size=size,
        device=str(device),
        dtype=str(bundle.preds.dtype).replace("torch.", ""),
        seconds=seconds,
        naive_gap=naive_gap(bundle) if with_naive else None,
    )
