"""Dashboards for the simulator gate: W&B and TensorBoard curves, rollout videos, alerts and scorecard pictures."""

from simgate_tracking.loggers.base import GateLogger, gate_scalars, safe_finalize, safe_log
from simgate_tracking.loggers.encode import default_video_format, encode_rollout_grid, encode_video
from simgate_tracking.loggers.figures import figure_to_array, scorecard_figure
from simgate_tracking.loggers.from_trainer import gate_loggers_for
from simgate_tracking.loggers.grid import rollout_grid
from simgate_tracking.loggers.scorecard_image import scorecard_image
from simgate_tracking.loggers.tensorboard_logger import TensorBoardGateLogger, gate_layout
from simgate_tracking.loggers.wandb_logger import WandbGateLogger

__all__ = [
    "GateLogger",
    "TensorBoardGateLogger",
    "WandbGateLogger",
    "default_video_format",
    "encode_rollout_grid",
    "encode_video",
    "figure_to_array",
    "gate_layout",
    "gate_loggers_for",
    "gate_scalars",
    "rollout_grid",
    "safe_finalize",
    "safe_log",
    "scorecard_figure",
    "scorecard_image",
]
