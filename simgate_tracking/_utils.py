"""Small helpers every layer shares: argument checks, optional dependencies, rank-zero warnings, the log prefix."""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import Any

import torch.distributed as dist
from lightning_utilities.core.imports import RequirementCache
from lightning_utilities.core.rank_zero import rank_zero_only

PREFIX = "simgate"  # every scalar, media key and report folder of the gate lives under it

# One flag per extra, true where its packages are installed; checked from package metadata, nothing is imported.
_WANDB_AVAILABLE = RequirementCache("wandb>=0.17")
_TENSORBOARD_AVAILABLE = RequirementCache("tensorboard>=2.14")
_MATPLOTLIB_AVAILABLE = RequirementCache("matplotlib>=3.7")
_PILLOW_AVAILABLE = RequirementCache("pillow>=10")
_GYMNASIUM_AVAILABLE = RequirementCache("gymnasium>=0.29")
_MINIGRID_AVAILABLE = RequirementCache("minigrid>=2.3")
_MUJOCO_AVAILABLE = RequirementCache("mujoco")
_HIGHWAY_AVAILABLE = RequirementCache("highway-env>=1.10")
_NUMBA_AVAILABLE = RequirementCache("numba>=0.59")
_DIFFUSERS_AVAILABLE = RequirementCache("diffusers")
_JSONARGPARSE_AVAILABLE = RequirementCache("jsonargparse")


def check_int(value: Any, name: str, low: int = 1, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``, else a ``ValueError`` naming ``name``.

    Args:
        value: What the caller was given.
        name: The argument's name, as the user wrote it.
        low: The smallest value allowed.
        high: The largest value allowed; None: no bound.

    Raises:
        ValueError: If ``value`` is not such an int; the message names the argument, the range and the value.

    Example:
        >>> check_int(3, "horizon", 2)
        3
        >>> check_int(True, "horizon", 2)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `horizon` to be an int >= 2 but got True
        >>> check_int(9, "num_actions", 1, 7)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `num_actions` to be an int in [1, 7] but got 9
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        expected = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise ValueError(f"Expected argument `{name}` to be {expected} but got {value!r}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """``value`` if it is an int >= 1 (not a bool), else a ``ValueError`` naming ``name``.

    Example:
        >>> check_positive_int(0, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `batch_size` to be a positive int but got 0
    """
    try:
        return check_int(value, name, 1)
    except ValueError:
        raise ValueError(f"Expected argument `{name}` to be a positive int but got {value!r}") from None


def require(extra: str, module: str, feature: str | None = None) -> ModuleType:
    """Import ``module``, or raise a ``ModuleNotFoundError`` that names the extra installing it.

    Args:
        extra: The simgate-tracking extra that installs ``module``, for example ``"wandb"`` or ``"media"``.
        module: The module's import name, for example ``"wandb"`` or ``"matplotlib.figure"``.
        feature: What needs it, opening the message, for example ``"WandbGateLogger"``.

    Raises:
        ModuleNotFoundError: If ``module`` (or a package it needs) is not installed.

    Example:
        >>> require("media", "math").sqrt(4.0)
        2.0
        >>> require("media", "no_such_module", "Scorecard pictures")
        Traceback (most recent call last):
        ...
        ModuleNotFoundError: Scorecard pictures: `no_such_module` is not installed; pip install simgate-tracking[media]
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        opening = f"{feature}: " if feature else ""
        raise ModuleNotFoundError(
            f"{opening}`{module}` is not installed; pip install simgate-tracking[{extra}]", name=err.name
        ) from err


def global_rank() -> int:
    """This process's global rank: torch.distributed's, else the one Lightning set, else ``$RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    rank = getattr(rank_zero_only, "rank", None)
    return int(rank) if rank is not None else int(os.environ.get("RANK", 0))


def rank_zero_warn(message: str | Warning, category: type[Warning] = UserWarning, stacklevel: int = 3) -> None:
    """Warn on the process of global rank 0 only, inside a Lightning ``Trainer`` or outside one.

    Args:
        message: The warning's text (or a ``Warning``).
        category: The warning's class.
        stacklevel: As ``warnings.warn`` takes it; the default points at the caller's caller.
    """
    if global_rank() == 0:
        warnings.warn(message, category, stacklevel=stacklevel)
