"""Speed of the scorecard scoring R real takes (a stochastic world), next to the floor: one read of every take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.bundle import Bundle, Size
from benchmarks.speed import FLOOR, _update, axes_only, floor_by_episode, floor_whole
from benchmarks.timing import time_cases
from simgate_tracking.metrics import SimulatorScorecard

TAKES = 4
ONE_TAKE = "one take (take 0): 5 axes + delta-PSNR"
ONE_TAKE_TENSORS = "one take (take 0): the same, tensor path"
NO_MASKS = "R takes: the same without masks (no object persistence)"


def takes_update(takes: int) -> str:
    """The name of the timed case: the scorecard's update against ``takes`` real takes."""
    return f"R = {takes} takes: 5 axes + delta-PSNR"


@dataclass(frozen=True)
class TakesResult:
    """Median seconds per case for one bundle of R real takes."""

    size: Size
    device: str
    dtype: str
    takes: int
    seconds: dict[str, float]

    @property
    def update(self) -> float:
        """Seconds of the R-take update without frame quality: what the target judges."""
        return self.seconds[takes_update(self.takes)]

    @property
    def floor(self) -> float:
        """Seconds of one read of every take and the model's frames (the faster of the two ways)."""
        return self.seconds[FLOOR]


def first_take(bundle: Bundle) -> Bundle:
    """Take 0 of a bundle of real takes alone, as a one-take bundle (its own contiguous tensors)."""
    return Bundle(
        preds=bundle.preds,
        target=bundle.target[:, 0].contiguous(),
        second=bundle.second,
        masks=bundle.masks[:, 0].contiguous(),
        visible=bundle.visible[:, 0].contiguous(),
        task_pred=bundle.task_pred,
        task_real=bundle.task_real[:, 0].contiguous(),
    )


def _without_masks(card: SimulatorScorecard, bundle: Bundle) -> Callable[[], None]:
    def call() -> None:
        card.update(
            bundle.preds,
            bundle.target,
            second=bundle.second,
            task_pred=bundle.task_pred,
            task_real=bundle.task_real,
        )

    return call


def measure_takes(bundle: Bundle, size: Size, repeats: int, slow_repeats: int) -> TakesResult:
    """Time the R-take update, the floor over every take, and the one-take update on take 0 for scale.

    The R-take update (frame quality off, as for the 5-axis target) gets ``slow_repeats`` runs, the rest ``repeats``.
    """
    device, takes = bundle.preds.device, bundle.target.shape[1]
    one = first_take(bundle)
    update = takes_update(takes)
    cases: dict[str, Callable[[], object]] = {
        FLOOR + " (whole)": lambda: floor_whole(bundle),
        FLOOR + " (by episode)": lambda: floor_by_episode(bundle),
        ONE_TAKE: _update(axes_only(SimulatorScorecard()).to(device), one),
        update: _update(axes_only(SimulatorScorecard(num_takes=takes)).to(device), bundle),
        NO_MASKS: _without_masks(axes_only(SimulatorScorecard(num_takes=takes)).to(device), bundle),
    }
    if device.type == "cpu":
        # the R-take path is tensor operations (the CPU kernel takes one take): the one-take tensor path alike
        cases[ONE_TAKE_TENSORS] = _update(axes_only(SimulatorScorecard(cpu_kernel=False)), one)
    counts = {name: slow_repeats if name == update else repeats for name in cases}
    seconds = time_cases(cases, counts, device)
    seconds[FLOOR] = min(seconds[FLOOR + " (whole)"], seconds[FLOOR + " (by episode)"])
    return TakesResult(
        size=size,
        device=str(device),
        dtype=str(bundle.preds.dtype).replace("torch.", ""),
        takes=takes,
        seconds=seconds,
    )
