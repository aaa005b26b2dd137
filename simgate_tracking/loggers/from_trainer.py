"""Find the Trainer's W&B and TensorBoard loggers and wrap them as gate loggers."""

from __future__ import annotations

from typing import Any

from simgate_tracking.loggers.base import GateLogger
from simgate_tracking.loggers.encode import DEFAULT_MAX_BYTES


def gate_loggers_for(
    trainer: Any, log_media: bool = True, max_media_bytes: int = DEFAULT_MAX_BYTES
) -> list[GateLogger]:
    """Gate loggers for the Trainer's W&B and TensorBoard dashboards.

    A :class:`WandbGateLogger` per ``WandbLogger`` and a :class:`TensorBoardGateLogger` per ``TensorBoardLogger``, in
    the order of ``trainer.loggers``.

    Other Lightning loggers (CSV, MLflow, ...) get no gate logger: send them :func:`gate_scalars` with their own
    ``log_metrics``. Only rank zero writes dashboards, so every other rank gets an empty list (and no W&B run is
    started there). W&B curves use ``trainer/global_step``, the x axis of Lightning's ``WandbLogger``.

    Args:
        trainer: A ``lightning.pytorch.Trainer``.
        log_media: Log rollout videos, scorecard charts and episode tables.
        max_media_bytes: Size budget of each check's rollout video.

    Returns:
        The gate loggers, each with ``lightning_logger`` set to the Lightning logger it wraps.

    Example:
        >>> import tempfile
        >>> from lightning.pytorch import Trainer
        >>> from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
        >>> root = tempfile.mkdtemp()
        >>> trainer = Trainer(default_root_dir=root, logger=[CSVLogger(root), TensorBoardLogger(root)],
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> [type(logger).__name__ for logger in gate_loggers_for(trainer)]
        ['TensorBoardGateLogger']
    """
    if not trainer.is_global_zero:
        return []
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from simgate_tracking.loggers.tensorboard_logger import TensorBoardGateLogger
    from simgate_tracking.loggers.wandb_logger import WandbGateLogger

    found: list[GateLogger] = []
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            found.append(
                WandbGateLogger(
                    logger.experiment,
                    step_metric="trainer/global_step",
                    log_media=log_media,
                    max_media_bytes=max_media_bytes,
                    lightning_logger=logger,
                )
            )
        elif isinstance(logger, TensorBoardLogger):
            found.append(
                TensorBoardGateLogger(
                    logger.experiment, log_media=log_media, max_media_bytes=max_media_bytes, lightning_logger=logger
                )
            )
    return found
