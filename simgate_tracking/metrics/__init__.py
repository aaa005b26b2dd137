"""torchmetrics ``Metric`` classes for the simulator axes: streaming, running-sum states, DDP-synced."""

from simgate_tracking.metrics.controllability import Controllability
from simgate_tracking.metrics.delta_psnr import DeltaPSNR
from simgate_tracking.metrics.object_persistence import ObjectPersistence
from simgate_tracking.metrics.reset_reproducibility import ResetReproducibility
from simgate_tracking.metrics.scorecard import SimulatorScorecard
from simgate_tracking.metrics.task_validity import TaskValidity
from simgate_tracking.metrics.temporal_consistency import TemporalConsistency
from simgate_tracking.metrics.visual_fidelity import VisualFidelity

__all__ = [
    "Controllability",
    "DeltaPSNR",
    "ObjectPersistence",
    "ResetReproducibility",
    "SimulatorScorecard",
    "TaskValidity",
    "TemporalConsistency",
    "VisualFidelity",
]
