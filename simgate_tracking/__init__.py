"""simgate-tracking: is this world model a simulator yet, or only a renderer?"""

from simgate_tracking.confidence import episodes_needed
from simgate_tracking.evaluate import evaluate
from simgate_tracking.gate import AXES, DEFAULT_THRESHOLD, GateResult, SimulatorGate
from simgate_tracking.probe import ProbeBatch, ProbeSet

__all__ = [
    "AXES",
    "DEFAULT_THRESHOLD",
    "GateResult",
    "ProbeBatch",
    "ProbeSet",
    "SimulatorGate",
    "episodes_needed",
    "evaluate",
]
__version__ = "0.1.0"
