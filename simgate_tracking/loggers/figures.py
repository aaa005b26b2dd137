"""The scorecard of one check as a matplotlib figure: a bar per simulator axis against its threshold, scores beside."""

from __future__ import annotations

from typing import Any

from simgate_tracking.loggers.text import verdict_line
from simgate_tracking.plotting import (
    AXIS_TICKS,
    FAIL_COLOUR,
    PASS_COLOUR,
    REALITY_COLOUR,
    WEAKEST_EDGE,
    figure_to_array,
    reality_marks,
    scorecard_picture,
)
from simgate_tracking.report import GateCheck

__all__ = [
    "AXIS_TICKS",
    "FAIL_COLOUR",
    "PASS_COLOUR",
    "REALITY_COLOUR",
    "WEAKEST_EDGE",
    "figure_to_array",
    "reality_marks",
    "scorecard_figure",
]


def scorecard_figure(check: GateCheck) -> Any:
    """Draw one check's scorecard: a bar per gated axis against its threshold, the ungated scores beside it.

    Each gated axis is a horizontal bar with its threshold as a black tick; the weakest axis is outlined; the
    ungated scores sit in a separate panel, each group under its own "not gated" heading: frame quality (PSNR, SSIM,
    delta-PSNR), decisions (``decision_no_regret``, ``planning_success``), other scores. Where reality's own score
    is not 1 (``result.real_baseline``: real takes of a stochastic world), a blue marker on each axis shows it, with a
    "reality" legend. Bars are green above their threshold and red at or below it. The title holds the step, the
    verdict and the weakest axis. The figure is built without pyplot on an Agg canvas, so it opens no window, needs
    no display and touches no global figure state (see :func:`simgate_tracking.plotting.scorecard_picture`).

    Args:
        check: The gate check to draw.

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64, "psnr": 31.0})
        >>> figure = scorecard_figure(GateCheck(result, step=120, epoch=3, manifest_hash="ab12"))
        >>> [len(axes.patches) for axes in figure.axes], figure.axes[0].get_title(loc="left")
        ([2, 0], 'step 120: FAIL, weakest object_persistence 0.640 (threshold 0.65)')
        >>> figure_to_array(figure).shape
        (240, 750, 3)
    """
    return scorecard_picture(check.result, verdict_line(check))[0]
