"""The scorecard of one check as a picture: a bar per simulator axis against its threshold, frame quality beside."""

from __future__ import annotations

from typing import Any

import numpy as np

from simgate_tracking.gate import AXES
from simgate_tracking.loggers.text import verdict_line
from simgate_tracking.report import GateCheck

PASS_COLOUR, FAIL_COLOUR, WEAKEST_EDGE = "#2e9d5b", "#d1453b", "#111111"


def _require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "Scorecard pictures need matplotlib: install it with `pip install simgate-tracking[media]`"
        ) from err
    return Figure


def scorecard_figure(check: GateCheck) -> Any:
    """Draw one check's scorecard: a bar per gated axis against its threshold, frame quality beside it.

    Each gated axis is a horizontal bar with its threshold as a black tick; the weakest axis is outlined; frame
    quality (PSNR, SSIM, delta-PSNR) sits in a separate panel marked "not gated". Bars are green above their
    threshold and red at or below it. The title holds the step, the verdict and the weakest axis. The figure is built
    without pyplot, so it opens no window and needs no display.

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
    """
    Figure = _require_matplotlib()
    result = check.result
    names = list(result.scores)
    figure = Figure(figsize=(7.5, 0.5 * len(names) + 1.4), dpi=100, layout="constrained")
    bars, fidelity = figure.subplots(1, 2, width_ratios=(3, 1))
    rows = np.arange(len(names))[::-1]
    colours = [FAIL_COLOUR if name in result.failing_axes else PASS_COLOUR for name in names]
    drawn = bars.barh(rows, [result.scores[name] for name in names], color=colours, height=0.6)
    for bar, name in zip(drawn, names, strict=True):
        if name == result.weakest_axis:
            bar.set_edgecolor(WEAKEST_EDGE)
            bar.set_linewidth(2)
        bars.text(bar.get_width() + 0.01, bar.get_y() + 0.3, f"{result.scores[name]:.3f}", va="center", fontsize=8)
    bars.vlines([result.thresholds[name] for name in names], rows - 0.4, rows + 0.4, colors="black", linewidth=2)
    bars.set_yticks(rows, names)
    bars.set_xlim(0, 1.1 if all(name in AXES for name in names) else None)
    bars.set_title(verdict_line(check), fontsize=9, loc="left")
    fidelity.axis("off")
    lines = [f"{name}: {value:.3f}" for name, value in result.extras.items()] or ["(none measured)"]
    fidelity.text(0, 1, "frame quality\n(not gated)\n\n" + "\n".join(lines), va="top", fontsize=9, family="monospace")
    return figure


def figure_to_array(figure: Any) -> np.ndarray:
    """Render a matplotlib figure to an (H, W, 3) uint8 RGB array (Agg canvas, no pyplot).

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.9})
        >>> figure_to_array(scorecard_figure(GateCheck(result, step=1, epoch=0, manifest_hash="0"))).shape
        (190, 750, 3)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
