"""The scorecard of one check as a picture: a bar per simulator axis against its threshold, frame quality beside."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simgate_tracking.gate import AXES
from simgate_tracking.loggers.text import verdict_line
from simgate_tracking.report import GateCheck

PASS_COLOUR, FAIL_COLOUR, WEAKEST_EDGE = "#2e9d5b", "#d1453b", "#111111"
REALITY_COLOUR = "#2f5fb3"  # reality's own score on an axis: a blue marker, apart from the black threshold tick
WIDTH, ROW_HEIGHT, DPI = 7.5, 0.5, 100  # inches, inches per axis, pixels per inch
# margins in inches: room for the title above and the x tick labels below; a layout engine costs more than the drawing
TOP, BOTTOM, PAD = 0.35, 0.4, 0.2
BARS_RIGHT, FIDELITY_LEFT = 0.72, 0.73  # fractions of the width: the bars take about three quarters
AXIS_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _require_matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "Scorecard pictures need matplotlib: install it with `pip install simgate-tracking[media]`"
        ) from err
    return Figure, FigureCanvasAgg


def _place(figure: Any, bars: Any, fidelity: Any, renderer: Any) -> None:
    """Set the panels' positions by hand, leaving the y tick labels exactly the room they take."""
    width, height = figure.get_size_inches()
    labels = max((label.get_window_extent(renderer).width for label in bars.get_yticklabels()), default=0.0)
    left = (labels / figure.dpi + PAD) / width
    bottom, top = BOTTOM / height, 1 - TOP / height
    bars.set_position((left, bottom, max(BARS_RIGHT - left, 0.05), top - bottom))
    fidelity.set_position((FIDELITY_LEFT, bottom, 1 - FIDELITY_LEFT, top - bottom))


def scorecard_figure(check: GateCheck) -> Any:
    """Draw one check's scorecard: a bar per gated axis against its threshold, frame quality beside it.

    Each gated axis is a horizontal bar with its threshold as a black tick; the weakest axis is outlined; frame
    quality (PSNR, SSIM, delta-PSNR) sits in a separate panel marked "not gated". Where reality's own score is not 1
    (``result.real_baseline``: real takes of a stochastic world), a blue marker on each axis shows it, with a
    "reality" legend. Bars are green above their
    threshold and red at or below it. The title holds the step, the verdict and the weakest axis. The figure is built
    without pyplot on an Agg canvas, so it opens no window, needs no display and touches no global figure state.

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
    Figure, FigureCanvasAgg = _require_matplotlib()
    result = check.result
    names = list(result.scores)
    figure = Figure(figsize=(WIDTH, ROW_HEIGHT * len(names) + 1.4), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    bars, fidelity = figure.add_axes((0, 0, 1, 1)), figure.add_axes((0, 0, 1, 1))
    rows = np.arange(len(names))[::-1]
    colours = [FAIL_COLOUR if name in result.failing_axes else PASS_COLOUR for name in names]
    drawn = bars.barh(rows, [result.scores[name] for name in names], color=colours, height=0.6)
    for bar, name in zip(drawn, names, strict=True):
        if name == result.weakest_axis:
            bar.set_edgecolor(WEAKEST_EDGE)
            bar.set_linewidth(2)
        bars.text(bar.get_width() + 0.01, bar.get_y() + 0.3, f"{result.scores[name]:.3f}", va="center", fontsize=8)
    bars.vlines([result.thresholds[name] for name in names], rows - 0.4, rows + 0.4, colors="black", linewidth=2)
    marks = reality_marks(result.real_baseline, names)
    if marks:  # reality's own score, where real takes put it below 1: a blue tick with a triangle above the bar
        ys = [float(rows[index]) for index in marks]
        xs = list(marks.values())
        bars.vlines(xs, [y - 0.3 for y in ys], [y + 0.3 for y in ys], colors=REALITY_COLOUR, linewidth=1.5)
        bars.scatter(xs, [y + 0.38 for y in ys], marker="v", s=36, color=REALITY_COLOUR, zorder=3, label="reality")
        bars.legend(loc="lower right", fontsize=7, frameon=False, handletextpad=0.2)
    bars.set_yticks(rows, names)
    if all(name in AXES for name in names):
        bars.set_xlim(0, 1.1)
        bars.set_xticks(AXIS_TICKS)  # fixed ticks spare the locator's work and a hidden tick past the edge
    else:
        bars.set_xlim(left=0)
    bars.set_title(verdict_line(check), fontsize=9, loc="left")
    fidelity.axis("off")
    lines = [f"{name}: {value:.3f}" for name, value in result.extras.items()] or ["(none measured)"]
    fidelity.text(0, 1, "frame quality\n(not gated)\n\n" + "\n".join(lines), va="top", fontsize=9, family="monospace")
    _place(figure, bars, fidelity, canvas.get_renderer())
    return figure


def reality_marks(real_baseline: Mapping[str, float], names: Sequence[str]) -> dict[int, float]:
    """Reality's own score to mark on each drawn axis, by the axis's index in ``names``; none when it is 1 everywhere.

    A probe set of one real take gives 1 on every axis (reality is its own reference): nothing is marked, so its
    picture stays as it was. Real takes of a stochastic world give reality's spread, below 1 on some axis: then
    every axis with a finite value gets its mark, 1 included.

    Example:
        >>> names = ["object_persistence", "controllability"]
        >>> reality_marks({"controllability": 1.0, "object_persistence": 1.0}, names)
        {}
        >>> reality_marks({"controllability": 0.9, "object_persistence": 1.0}, names)
        {0: 1.0, 1: 0.9}
    """
    if all(value == 1.0 for value in real_baseline.values()):
        return {}
    values = {index: real_baseline.get(name) for index, name in enumerate(names)}
    return {i: float(v) for i, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def figure_to_array(figure: Any) -> np.ndarray:
    """Render a matplotlib figure to an (H, W, 3) uint8 RGB array on its Agg canvas (no pyplot).

    A figure already on an Agg canvas (as :func:`scorecard_figure`'s are) is drawn there; any other gets a fresh one.

    Args:
        figure: A :class:`matplotlib.figure.Figure`.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.9})
        >>> figure_to_array(scorecard_figure(GateCheck(result, step=1, epoch=0, manifest_hash="0"))).shape
        (190, 750, 3)
    """
    _, FigureCanvasAgg = _require_matplotlib()
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
