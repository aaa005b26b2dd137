"""TensorBoard dashboard for the simulator gate: per-axis curves with a one-chart layout, GIF rollouts, alert text."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from simgate_tracking._utils import PREFIX, check_positive_int, require
from simgate_tracking.loggers.base import GateLogger, gate_scalars, media_available
from simgate_tracking.loggers.encode import DEFAULT_MAX_BYTES, encode_video
from simgate_tracking.loggers.grid import require_pillow, rollout_grid
from simgate_tracking.loggers.scorecard_image import scorecard_image
from simgate_tracking.loggers.text import (
    alerts_markdown,
    episode_table,
    markdown_table,
    planning_line,
    scores_markdown,
    verdict_line,
)
from simgate_tracking.report import GateCheck, RolloutSamples

FIDELITY = (("PSNR (dB)", "psnr"), ("SSIM", "ssim"), ("delta-PSNR (dB)", "delta_psnr"))
DECISION = ("task_validity", "decision_no_regret", "planning_success", "planning_success_real")


def _require_tensorboard() -> Any:
    return require("tensorboard", "tensorboard.compat.proto.summary_pb2", "TensorBoardGateLogger").Summary


def _exact(*names: str) -> str:
    """A custom-scalars tag regex matching exactly these tags."""
    return "^(" + "|".join(re.escape(name) for name in names) + ")$"


def gate_layout(
    axes: list[str], extras: Sequence[str] = (), intervals: Sequence[str] = ()
) -> dict[str, dict[str, list[Any]]]:
    """The custom-scalars layout: every gated axis and its threshold on one chart, frame quality on its own charts.

    A second chart draws every axis beside reality's own score on it (``simgate/reality/<axis>``: each real take
    held out and scored as the model is; 1 with one take), the reference a stochastic world's model is held to.

    When the check measures decisions (``decision_no_regret``, ``planning_success`` among its scores), a "decision
    quality" chart beside the axes shows decision agreement (``task_validity``), no-regret and planning success
    with the model and with the real environment.

    Axes with confidence intervals get a "confidence intervals" section: one margin chart per axis, its curve inside
    the band from ``simgate/low/<axis>`` to ``simgate/high/<axis>``.

    Args:
        axes: The gated axes, in the order of the verdict.
        extras: The names of the scores reported beside the verdict.
        intervals: The axes that have confidence intervals.

    Example:
        >>> layout = gate_layout(["controllability", "object_persistence"])
        >>> list(layout)
        ['simulator gate', 'frame quality (not gated)']
        >>> list(layout["simulator gate"])
        ['axes vs threshold', 'axes vs reality', 'weakest axis (min_axis)', 'passed']
        >>> layout["simulator gate"]["axes vs threshold"]
        ['Multiline', ['^(simgate/controllability|simgate/object_persistence)$', '^simgate/threshold/']]
        >>> list(gate_layout(["task_validity"], ["decision_no_regret", "planning_success"])["simulator gate"])[-1]
        'decision quality'
    """
    thresholds = f"^{PREFIX}/threshold/"
    gate = {
        "axes vs threshold": ["Multiline", [_exact(*(f"{PREFIX}/{axis}" for axis in axes)), thresholds]],
        "axes vs reality": ["Multiline", [_exact(*(f"{PREFIX}/{axis}" for axis in axes)), f"^{PREFIX}/reality/"]],
        "weakest axis (min_axis)": ["Multiline", [_exact(f"{PREFIX}/min_axis"), thresholds]],
        "passed": ["Multiline", [_exact(f"{PREFIX}/passed")]],
    }
    if set(DECISION[1:]) & {*axes, *extras}:
        gate["decision quality"] = ["Multiline", [_exact(*(f"{PREFIX}/{name}" for name in DECISION))]]
    layout = {"simulator gate": gate}
    if intervals:
        layout["confidence intervals"] = {
            axis: ["Margin", [f"{PREFIX}/{axis}", f"{PREFIX}/low/{axis}", f"{PREFIX}/high/{axis}"]]
            for axis in intervals
        }
    layout["frame quality (not gated)"] = {title: ["Multiline", [_exact(f"{PREFIX}/{key}")]] for title, key in FIDELITY}
    return layout


class TensorBoardGateLogger(GateLogger):
    """Log simulator gate checks to a TensorBoard ``SummaryWriter``, at the training step of each check.

    - Scalars tab: ``simgate/<axis>``, ``simgate/min_axis``, ``simgate/passed``, ``simgate/weakest_axis``,
      ``simgate/threshold/<axis>``, ``simgate/psnr``, ``simgate/ssim``, ``simgate/delta_psnr``.
    - Custom Scalars tab (written once): all gated axes and their thresholds on one chart, the weakest axis against
      the threshold, decision quality (decision agreement, no-regret, planning success) when the check measures it,
      each axis inside its confidence interval band when the check has intervals (``simgate/low/<axis>``,
      ``simgate/high/<axis>``), and frame quality on charts of its own (see :func:`gate_layout`).
    - Images tab: ``simgate/rollouts``, an animated GIF of the sample episodes (real | model | difference per action
      branch, step and verdict in the header), ``simgate/scorecard``, the bar chart of the check, and, at checks
      that ran the planning probe, ``simgate/planning``: its episodes, what happened | what the model expected.
    - Text tab: ``simgate/verdict`` (the scores as a table), ``simgate/alerts`` (when the check raised any, level,
      axis, score, threshold and step) and ``simgate/episodes`` (per-episode scores).

    Logs on rank zero only and flushes after every check; the writer stays open (its owner closes it).

    Args:
        writer: A ``torch.utils.tensorboard.SummaryWriter``, e.g. ``TensorBoardLogger.experiment``.
        log_media: Log the rollout GIF, the scorecard chart and the episode table (off, with a warning, without
            Pillow).
        fps: Frames per second of the rollout GIF.
        max_media_bytes: Size budget of each check's GIF; a larger one is shrunk until it fits.
        lightning_logger: The Lightning logger that owns ``writer``, if any.

    Raises:
        ValueError: On a bad argument.
        ModuleNotFoundError: If tensorboard is not installed.

    Example:
        >>> import tempfile
        >>> from torch.utils.tensorboard import SummaryWriter
        >>> from simgate_tracking import SimulatorGate
        >>> writer = SummaryWriter(tempfile.mkdtemp())
        >>> logger = TensorBoardGateLogger(writer)
        >>> result = SimulatorGate().evaluate({"controllability": 0.9, "object_persistence": 0.6})
        >>> logger.log_check(GateCheck(result, step=200, epoch=1, manifest_hash="ab12"))
        >>> writer.close()
    """

    def __init__(
        self,
        writer: Any,
        log_media: bool = True,
        fps: float = 4.0,
        max_media_bytes: int = DEFAULT_MAX_BYTES,
        lightning_logger: Any = None,
    ) -> None:
        self.summary_type = _require_tensorboard()
        for method in ("add_scalar", "add_text", "add_custom_scalars", "_get_file_writer"):
            if not callable(getattr(writer, method, None)):
                raise ValueError(
                    f"Expected argument `writer` to be a torch.utils.tensorboard.SummaryWriter but got "
                    f"{type(writer).__name__} without `{method}`"
                )
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            raise ValueError(f"Expected argument `fps` to be a positive number but got {fps!r}")
        check_positive_int(max_media_bytes, "max_media_bytes")
        self.writer = writer
        self.log_media = log_media and media_available("TensorBoardGateLogger")
        self.fps = float(fps)
        self.max_media_bytes = max_media_bytes
        self.lightning_logger = lightning_logger
        self._layout_written = False

    @rank_zero_only
    def log_check(self, check: GateCheck) -> None:
        """Log one check's scalars, text, alerts and media at ``check.dashboard_step``, then flush."""
        if not self._layout_written:
            result = check.result
            self.writer.add_custom_scalars(
                gate_layout(list(result.scores), list(result.extras), list(result.intervals))
            )
            self._layout_written = True
        for key, value in gate_scalars(check.result).items():
            self.writer.add_scalar(key, value, check.dashboard_step)
        self.writer.add_text(f"{PREFIX}/verdict", scores_markdown(check), check.dashboard_step)
        if check.alerts:  # media and alerts that fail are dropped alone and retried after a back-off
            text, step = alerts_markdown(check.alerts), check.dashboard_step
            self.optional_part("alerts", check.step, lambda: self.writer.add_text(f"{PREFIX}/alerts", text, step))
        if self.log_media:
            self.optional_part("media", check.step, lambda: self._media(check))
        self.writer.flush()

    def finalize(self) -> None:
        """Flush the writer; it stays open for its owner to close."""
        self.writer.flush()

    def _media(self, check: GateCheck) -> None:
        self.writer.add_image(f"{PREFIX}/scorecard", scorecard_image(check), check.dashboard_step, dataformats="HWC")
        columns, rows = episode_table(check)
        if rows:
            self.writer.add_text(f"{PREFIX}/episodes", markdown_table(columns, rows), check.dashboard_step)
        if check.samples is not None:
            self._add_video("Rollout", f"{PREFIX}/rollouts", check.samples, verdict_line(check), check.dashboard_step)
        planning = None if check.planning is None else check.planning.as_rollouts()
        if planning is not None:
            self._add_video("Planning", f"{PREFIX}/planning", planning, planning_line(check), check.dashboard_step)

    def _add_video(self, what: str, tag: str, samples: RolloutSamples, caption: str, step: int) -> None:
        try:
            gif = encode_video(rollout_grid(samples, caption), "gif", self.fps, self.max_media_bytes)
        except ValueError as err:
            warnings.warn(f"{what} GIF skipped at step {step}: {err}", UserWarning, stacklevel=4)
            return
        self.add_gif(tag, gif, step)

    def add_gif(self, tag: str, gif: bytes, step: int) -> None:
        """Write an animated GIF as an image summary at ``step``; TensorBoard's Images tab plays it."""
        Image, _, _ = require_pillow()
        width, height = Image.open(io.BytesIO(gif)).size  # the budget may have shrunk it
        image = self.summary_type.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
        summary = self.summary_type(value=[self.summary_type.Value(tag=tag, image=image)])
        self.writer._get_file_writer().add_summary(summary, step)
