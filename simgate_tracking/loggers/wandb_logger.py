"""Weights & Biases dashboard for the simulator gate: per-axis curves, rollout videos, alerts, scorecard pictures."""

from __future__ import annotations

import io
import time
import warnings
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from simgate_tracking._utils import PREFIX, check_positive_int, require
from simgate_tracking.alerts import Alert
from simgate_tracking.loggers.base import GateLogger, gate_scalars, media_available
from simgate_tracking.loggers.encode import DEFAULT_MAX_BYTES, VideoFormat, default_video_format, encode_video
from simgate_tracking.loggers.grid import rollout_grid
from simgate_tracking.loggers.scorecard_image import scorecard_image
from simgate_tracking.loggers.text import episode_table, planning_line, verdict_line
from simgate_tracking.report import GateCheck, RolloutSamples

LEVEL_ORDER = {"WARN": 0, "ERROR": 1}


def _require_wandb() -> Any:
    return require("wandb", "wandb", "WandbGateLogger")


def _check_options(step_metric: Any, fps: Any, max_media_bytes: Any, alert_wait_s: Any) -> None:
    if not isinstance(step_metric, str) or not step_metric:
        raise ValueError(f"Expected argument `step_metric` to be a non-empty str but got {step_metric!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise ValueError(f"Expected argument `fps` to be a positive number but got {fps!r}")
    check_positive_int(max_media_bytes, "max_media_bytes")
    if isinstance(alert_wait_s, bool) or not isinstance(alert_wait_s, (int, float)) or alert_wait_s < 0:
        raise ValueError(f"Expected argument `alert_wait_s` to be a number >= 0 but got {alert_wait_s!r}")


class WandbGateLogger(GateLogger):
    """Log simulator gate checks to a W&B run.

    Every check adds one history row, on the training-step axis ``step_metric``, holding:

    - ``simgate/<axis>``, ``simgate/min_axis``, ``simgate/passed``, ``simgate/weakest_axis``,
      ``simgate/threshold/<axis>`` and frame quality ``simgate/psnr``, ``simgate/ssim``, ``simgate/delta_psnr``;
      each gated axis and ``min_axis`` keep ``min`` and ``last`` in the run summary (``define_metric``);
    - ``simgate/rollouts``: a video grid of the sample episodes, real | model | difference per action branch,
      captioned with the step and the verdict (MP4 with imageio-ffmpeg, else animated GIF; no moviepy);
    - ``simgate/planning``, at checks that ran the planning probe: its episodes as a video, what happened | what
      the model expected after each chosen action;
    - ``simgate/scorecard``: the bar chart of :func:`~simgate_tracking.loggers.scorecard_image`;
    - ``simgate/episodes``: a table of per-episode scores.

    Each check's alerts go to ``run.alert`` (WARN, or ERROR when the gate failed), one per axis, and an axis alerts
    again at the same level only after ``alert_wait_s`` seconds. Logs on rank zero only. The run is not finished
    here: its owner (you, or Lightning's ``WandbLogger``) finishes it.

    Args:
        run: A W&B run: ``wandb.init(...)`` or ``WandbLogger.experiment``.
        step_metric: The history key that carries the training step, the x axis of every gate curve. The default
            is the key Lightning's ``WandbLogger`` uses, so gate curves share the axis of every other curve.
        log_media: Log rollout videos, the scorecard chart and the episode table (off, with a warning, without
            Pillow).
        video_format: ``"gif"`` or ``"mp4"``; default MP4 when imageio-ffmpeg is installed, else GIF.
        fps: Frames per second of rollout videos.
        max_media_bytes: Size budget of each check's rollout video; a larger one is shrunk until it fits.
        alert_wait_s: Seconds before the same axis may alert again at the same level.
        lightning_logger: The Lightning logger that owns ``run``, if any.

    Raises:
        ValueError: On a bad argument.
        ModuleNotFoundError: If wandb is not installed.

    Example:
        >>> import tempfile, wandb
        >>> from simgate_tracking import SimulatorGate
        >>> run = wandb.init(mode="offline", dir=tempfile.mkdtemp(), settings=wandb.Settings(silent=True))
        >>> logger = WandbGateLogger(run, step_metric="global_step")
        >>> result = SimulatorGate().evaluate({"controllability": 0.9, "object_persistence": 0.6})
        >>> logger.log_check(GateCheck(result, step=200, epoch=1, manifest_hash="ab12"))
        >>> axis = run.summary["simgate/object_persistence"]  # min and last over the run
        >>> axis["min"], axis["last"], run.summary["global_step"]
        (0.6, 0.6, 200)
        >>> run.finish()
    """

    def __init__(
        self,
        run: Any,
        step_metric: str = "trainer/global_step",
        log_media: bool = True,
        video_format: VideoFormat | None = None,
        fps: float = 4.0,
        max_media_bytes: int = DEFAULT_MAX_BYTES,
        alert_wait_s: float = 300.0,
        lightning_logger: Any = None,
    ) -> None:
        self.wandb = _require_wandb()
        if not callable(getattr(run, "log", None)):
            raise ValueError(f"Expected argument `run` to be a W&B run (wandb.init()) but got {type(run).__name__}")
        _check_options(step_metric, fps, max_media_bytes, alert_wait_s)
        if video_format not in (None, "gif", "mp4"):
            raise ValueError(f"Expected argument `video_format` to be 'gif', 'mp4' or None but got {video_format!r}")
        self.run = run
        self.step_metric = step_metric
        self.log_media = log_media and media_available("WandbGateLogger")
        self.video_format: VideoFormat = video_format or default_video_format()
        self.fps = float(fps)
        self.max_media_bytes = max_media_bytes
        self.alert_wait_s = float(alert_wait_s)
        self.lightning_logger = lightning_logger
        self._defined: set[str] = set()
        self._last_alert: dict[tuple[str, str], float] = {}

    @rank_zero_only
    def log_check(self, check: GateCheck) -> None:
        """Log one check: scalars, media and alerts in one history row at ``check.dashboard_step``.

        Media or alerts that fail are dropped alone, with a warning, and tried again after a back-off
        (:meth:`~simgate_tracking.loggers.GateLogger.optional_part`); the curves keep coming.
        """
        self._define_metrics(check)
        row: dict[str, Any] = {**gate_scalars(check.result), self.step_metric: check.dashboard_step}
        self._log_row(row, check)
        if check.alerts:
            self.optional_part("alerts", check.step, lambda: self._alert(check.alerts))

    def _log_row(self, row: dict[str, Any], check: GateCheck) -> None:
        media: dict[str, Any] = {}
        if self.log_media and self.part_due("media"):
            try:
                media = self._media(check)
            except Exception as err:  # a media file that cannot be written: the row goes without it
                self.part_failed("media", check.step, err)
        try:
            self.run.log({**row, **media})
        except Exception as err:
            if not media:
                raise
            self.run.log(row)  # raises too when the run itself is down: then the whole logger goes, not its media
            self.part_failed("media", check.step, err)
        else:
            if media:
                self.part_succeeded("media")

    def _define_metrics(self, check: GateCheck) -> None:
        if not self._defined:
            self.run.define_metric(self.step_metric)
        for name in [*check.result.scores, "min_axis"]:
            key = f"{PREFIX}/{name}"
            if key not in self._defined:
                self.run.define_metric(key, step_metric=self.step_metric, summary="min,last")
                self._defined.add(key)
        if f"{PREFIX}/*" not in self._defined:
            # explicit names above take precedence over this glob for the rest
            self.run.define_metric(f"{PREFIX}/*", step_metric=self.step_metric)
            self._defined.add(f"{PREFIX}/*")

    def _media(self, check: GateCheck) -> dict[str, Any]:
        wandb, caption = self.wandb, verdict_line(check)
        media: dict[str, Any] = {f"{PREFIX}/scorecard": wandb.Image(scorecard_image(check), caption=caption)}
        columns, rows = episode_table(check)
        if rows:
            media[f"{PREFIX}/episodes"] = wandb.Table(columns=columns, data=rows)
        planning = None if check.planning is None else check.planning.as_rollouts()
        videos = (
            ("rollouts", "Rollout", check.samples, caption),
            ("planning", "Planning", planning, planning_line(check)),
        )
        for name, what, samples, text in videos:
            video = None if samples is None else self._video(what, samples, text, check.step)
            if video is not None:
                media[f"{PREFIX}/{name}"] = video
        return media

    def _video(self, what: str, samples: RolloutSamples, caption: str, step: int) -> Any:
        try:
            video = encode_video(rollout_grid(samples, caption), self.video_format, self.fps, self.max_media_bytes)
        except ValueError as err:
            warnings.warn(f"{what} video skipped at step {step}: {err}", UserWarning, stacklevel=4)
            return None
        return self.wandb.Video(io.BytesIO(video), caption=caption, format=self.video_format)

    def _alert(self, alerts: tuple[Alert, ...]) -> None:
        by_axis: dict[str, list[Alert]] = {}
        for alert in alerts:
            by_axis.setdefault(alert.axis, []).append(alert)
        now = time.monotonic()
        for axis, group in by_axis.items():
            group.sort(key=lambda alert: -LEVEL_ORDER[alert.level])
            level = group[0].level
            last = self._last_alert.get((axis, level))
            if last is not None and now - last < self.alert_wait_s:
                continue
            self.run.alert(
                title=group[0].title,
                text="\n".join(alert.text for alert in group),
                level=getattr(self.wandb.AlertLevel, level),
                wait_duration=self.alert_wait_s,
            )
            self._last_alert[(axis, level)] = now  # after the call: an alert that failed is not waited for
