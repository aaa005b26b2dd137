"""The demo's dashboards: TensorBoard, W&B (online when logged in, else offline) and CSV loggers, and their runs."""

from __future__ import annotations

import netrc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning as L

LOGGERS: tuple[str, ...] = ("tensorboard", "wandb", "csv")
RUN_NAME = "simgate-demo"


def wandb_logged_in() -> bool:
    """Whether W&B has credentials on this machine (``WANDB_API_KEY`` or a netrc entry), without any network call.

    Example:
        >>> isinstance(wandb_logged_in(), bool)
        True
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def make_loggers(kinds: Sequence[str], out: Path) -> list[Any]:
    """Lightning loggers for the demo, TensorBoard and CSV first so that the run's log directory is theirs.

    W&B runs offline unless this machine is logged in (``wandb login``); it never asks for a key.

    Raises:
        ValueError: On an unknown logger name.
        ModuleNotFoundError: If the chosen dashboard is not installed, naming the extra to install.

    Example:
        >>> import tempfile
        >>> [type(logger).__name__ for logger in make_loggers(["csv", "tensorboard"], Path(tempfile.mkdtemp()))]
        ['TensorBoardLogger', 'CSVLogger']
    """
    unknown = sorted(set(kinds) - set(LOGGERS))
    if unknown:
        raise ValueError(f"Expected loggers among {LOGGERS} but got {unknown}")
    loggers: list[Any] = []
    for kind in sorted(set(kinds), key=LOGGERS.index):
        if kind == "tensorboard":
            require_dashboard("tensorboard", "tensorboard")
            loggers.append(L.pytorch.loggers.TensorBoardLogger(save_dir=str(out), name=RUN_NAME))
        elif kind == "csv":
            loggers.append(L.pytorch.loggers.CSVLogger(save_dir=str(out), name=RUN_NAME))
        else:
            require_dashboard("wandb", "wandb")
            offline = not wandb_logged_in()
            loggers.append(L.pytorch.loggers.WandbLogger(project=RUN_NAME, save_dir=str(out), offline=offline))
    return loggers


def require_dashboard(module: str, extra: str) -> None:
    """Refuse a dashboard whose package is missing, naming the extra that installs it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"The demo's {module} dashboard needs {module}: pip install simgate-tracking[{extra}]"
        )


def logger_dirs(loggers: Sequence[Any]) -> dict[str, Path]:
    """Where each dashboard wrote its run."""
    names = {"TensorBoardLogger": "tensorboard", "CSVLogger": "csv", "WandbLogger": "wandb"}
    found = {}
    for logger in loggers:
        kind = names.get(type(logger).__name__)
        if kind == "wandb":
            found[kind] = Path(logger.experiment.dir).parent  # the offline-run-* (or run-*) folder
        elif kind is not None:
            found[kind] = Path(logger.log_dir)
    return found


def finish_wandb(loggers: Sequence[Any]) -> None:
    """Close the W&B run, if the demo has one."""
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish()  # W&B's closing lines come now, before the verdict, not after it at exit
