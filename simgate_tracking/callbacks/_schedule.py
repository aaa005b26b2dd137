"""When the gate runs in a Trainer, at which step its scalars land, and names a checkpoint path would break."""

from __future__ import annotations

import re
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.model_helpers import is_overridden

# `{simgate/min_axis...}` in a ModelCheckpoint filename: Lightning writes the name before the value, "/" included
SLASHED_NAME = re.compile(r"\{([^{}:]*/[^{}:]*)[:}]")


def why_fit_never_runs(trainer: pl.Trainer, pl_module: pl.LightningModule, every_n_epochs: int) -> str | None:
    """Why this fit will never reach the gate, or None when a validation run may.

    The gate runs at the end of validation: no validation during fit (``limit_val_batches=0``, no
    ``validation_step``, no validation data, ``check_val_every_n_epoch`` past ``max_epochs``) means no check. So
    does ``every_n_epochs`` past the validation runs an epoch-bounded fit makes.
    """
    if trainer.limit_val_batches == 0:
        return "the Trainer validates no batch (`limit_val_batches=0`)"
    if not is_overridden("validation_step", pl_module):
        return "the LightningModule has no `validation_step`, so Lightning skips validation"
    if not trainer.enable_validation:
        return "the Trainer has no validation data (no `val_dataloader`)"
    every, max_epochs = trainer.check_val_every_n_epoch, trainer.max_epochs
    if every is None or max_epochs is None or max_epochs < 0 or trainer.max_steps != -1:
        return None  # validation by steps, or a fit bounded by steps: its runs cannot be counted here
    interval = trainer.val_check_interval
    runs = max_epochs // every if isinstance(interval, float) and interval == 1.0 else None
    if runs == 0:
        return f"`check_val_every_n_epoch={every}` is more than `max_epochs={max_epochs}`"
    if runs is not None and runs < every_n_epochs:
        return f"the Trainer validates {runs} time(s) but the gate runs every {every_n_epochs} validation runs"
    return None


def logging_step(trainer: pl.Trainer) -> int:
    """The step Lightning logs the current validation run's own metrics at (``val_loss`` and the like).

    Lightning logs them at its count of batches that stepped the optimizers, which ``global_step`` runs one ahead of
    at the end of a training epoch and which it keeps in a private counter; ``global_step`` where that is gone.
    """
    return int(getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step))


def slashed_checkpoint_names(trainer: pl.Trainer) -> list[tuple[str, str]]:
    """``(filename, metric)`` of every ``ModelCheckpoint`` whose filename would put a metric's "/" into the path.

    With ``auto_insert_metric_name=True`` (the default) Lightning writes ``{simgate/min_axis:.3f}`` as
    ``simgate/min_axis=0.812``: a folder ``simgate`` and a file ``min_axis=0.812.ckpt``.
    """
    found: list[tuple[str, str]] = []
    for callback in trainer.checkpoint_callbacks:
        filename: Any = getattr(callback, "filename", None)
        if isinstance(callback, ModelCheckpoint) and callback.auto_insert_metric_name and isinstance(filename, str):
            found.extend((filename, name) for name in SLASHED_NAME.findall(filename))
    return found


def alias(name: str) -> str:
    """The name of a gate metric without "/", for file names: ``simgate/min_axis`` -> ``simgate_min_axis``.

    Example:
        >>> alias("simgate/min_axis")
        'simgate_min_axis'
    """
    return name.replace("/", "_")


def warn_slashed_checkpoint_names(trainer: pl.Trainer, prefix: str) -> None:
    """Warn of every ModelCheckpoint filename that names one of the gate's metrics, "/" and all."""
    for filename, name in slashed_checkpoint_names(trainer):
        if name.startswith(f"{prefix}/"):
            rank_zero_warn(
                f"ModelCheckpoint(filename={filename!r}) saves into a folder: Lightning writes the metric's name "
                f"before its value and the '/' in {name!r} becomes a path. Write '{{{alias(name)}:.3f}}' (the "
                f"same score under a name without '/'), or pass `auto_insert_metric_name=False` with "
                f"'{alias(name).removeprefix(prefix + '_')}={{{name}:.3f}}'."
            )


def warn_if_fit_never_runs(trainer: pl.Trainer, pl_module: pl.LightningModule, every_n_epochs: int) -> bool:
    """Warn, once at the start of a fit, when it will never reach the gate; whether it warned."""
    reason = why_fit_never_runs(trainer, pl_module, every_n_epochs)
    if reason is not None:
        rank_zero_warn(
            f"SimulatorGateCallback will never run during this fit: {reason}. No simulator scores, reports or "
            "gate decisions will come; score a checkpoint with `trainer.validate(model)`."
        )
    return reason is not None


def warn_no_check_ran(every_n_epochs: int) -> None:
    """Warn at the end of a fit that ran no check (and whose start did not already say it would not)."""
    rank_zero_warn(
        "SimulatorGateCallback ran no check during this fit: no validation run reached the gate (empty "
        f"validation data, a fit stopped early, or fewer than `every_n_epochs={every_n_epochs}` "
        "validation runs). Score the model with `trainer.validate(model)`."
    )
