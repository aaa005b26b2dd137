"""Lightning callbacks: run the simulator gate at validation time, and stop training when it keeps failing."""

from simgate_tracking.callbacks.early_stopping import GateEarlyStopping
from simgate_tracking.callbacks.gate import SimulatorGateCallback

__all__ = ["GateEarlyStopping", "SimulatorGateCallback"]
