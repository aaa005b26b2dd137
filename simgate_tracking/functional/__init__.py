"""Pure tensor functions behind every metric class: each axis as a function of model and real frames."""

from simgate_tracking.functional.controllability import controllability, delta_psnr
from simgate_tracking.functional.object_persistence import object_persistence
from simgate_tracking.functional.reset_reproducibility import reset_reproducibility
from simgate_tracking.functional.task_validity import task_validity
from simgate_tracking.functional.temporal_consistency import temporal_consistency

__all__ = [
    "controllability",
    "delta_psnr",
    "object_persistence",
    "reset_reproducibility",
    "task_validity",
    "temporal_consistency",
]
