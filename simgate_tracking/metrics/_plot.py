"""The scorecard's ``plot``: the scorecard picture of one value, the gated axes' curves over several."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simgate_tracking.gate import DEFAULT_THRESHOLD, SimulatorGate
from simgate_tracking.plotting import require_matplotlib, scorecard_curves, scorecard_picture
from simgate_tracking.report import verdict_text


def plot_scorecard(
    val: Any,
    ax: Any = None,
    threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
    real_baseline: Mapping[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The scorecard picture of one value, or the gated axes' curves over a sequence of values.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed (the ``media`` extra).
        ValueError: If ``val`` is neither a dict of scores nor a sequence of them.
    """
    require_matplotlib()
    gate = SimulatorGate(threshold)
    if isinstance(val, Mapping):
        result = gate.evaluate(val, real_baseline=real_baseline)
        return scorecard_picture(result, verdict_text(result), ax)
    if isinstance(val, Sequence) and all(isinstance(item, Mapping) for item in val):
        return scorecard_curves([gate.evaluate(item) for item in val], ax)
    raise ValueError(f"Expected a dict of scores or a sequence of them to plot but got {type(val).__name__}")
