"""The scorecard drawn with matplotlib: one verdict as bars against thresholds, or the gated axes over checks.

Metric classes (``SimulatorScorecard.plot``) and dashboards (:mod:`simgate_tracking.loggers.figures`) both draw
through this module; matplotlib is imported only when something is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simgate_tracking._utils import require
from simgate_tracking.gate import AXES, GateResult

PASS_COLOUR, FAIL_COLOUR, WEAKEST_EDGE = "#2e9d5b", "#d1453b", "#111111"
INCONCLUSIVE_COLOUR = "#e3a21a"  # amber: an axis whose confidence interval holds its threshold
REALITY_COLOUR = "#2f5fb3"  # reality's own score on an axis: a blue marker, apart from the black threshold tick
WIDTH, ROW_HEIGHT, DPI = 7.5, 0.5, 100  # inches, inches per axis, pixels per inch
# margins in inches: room for the title above and the x tick labels below; a layout engine costs more than the drawing
TOP, BOTTOM, PAD = 0.35, 0.4, 0.2
BARS_RIGHT, FIDELITY_LEFT = 0.72, 0.73  # fractions of the width: the bars take about three quarters
AXIS_TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# ungated scores by what they measure, each group under its own heading beside the bars
FRAME_QUALITY = ("psnr", "ssim", "delta_psnr")
DECISIONS = ("decision_no_regret", "planning_success", "planning_success_real")
MEDIA_EXTRA = "`pip install simgate-tracking[media]`"


def require_matplotlib() -> tuple[Any, Any]:
    """The ``Figure`` and Agg canvas classes of matplotlib.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed, naming the extra that installs it.
    """
    # the package itself first: its submodules may be cached without it
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        require("media", module, "Plots and scorecard pictures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def ungated_groups(extras: Mapping[str, float]) -> list[tuple[str, dict[str, float]]]:
    """The ungated scores under their headings: frame quality, decisions (task choices, planning), other scores.

    Example:
        >>> for heading, values in ungated_groups({"psnr": 31.0, "decision_no_regret": 0.9, "custom": 2.0}):
        ...     print(heading, values)
        frame quality {'psnr': 31.0}
        decisions {'decision_no_regret': 0.9}
        other scores {'custom': 2.0}
    """
    known = (*FRAME_QUALITY, *DECISIONS)
    groups = [
        ("frame quality", {k: v for k, v in extras.items() if k in FRAME_QUALITY}),
        ("decisions", {k: v for k, v in extras.items() if k in DECISIONS}),
        ("other scores", {k: v for k, v in extras.items() if k not in known}),
    ]
    return [(heading, values) for heading, values in groups if values]


def panel_lines(extras: Mapping[str, float]) -> list[tuple[str, str]]:
    """The text beside the bars as (name, value) lines; a heading has no value, a blank line neither.

    Example:
        >>> for name, value in panel_lines({"psnr": 31.0, "planning_success": 0.5}):
        ...     print(name + value)
        frame quality
        (not gated)
        <BLANKLINE>
        psnr: 31.000
        <BLANKLINE>
        decisions
        (not gated)
        <BLANKLINE>
        planning_success: 0.500
    """
    lines: list[tuple[str, str]] = []
    for heading, values in ungated_groups(extras):
        lines.extend([("", "")] if lines else [])
        lines.extend([(heading, ""), ("(not gated)", ""), ("", "")])
        lines.extend((name, f": {value:.3f}") for name, value in values.items())
    return lines


def draw_scorecard(bars: Any, result: GateResult, title: str) -> None:
    """Draw a bar per gated axis on the matplotlib ``Axes`` ``bars``, each against its threshold, under ``title``.

    Bars are green above their threshold and red at or below it, the threshold a black tick; the weakest axis is
    outlined; an axis whose confidence interval holds its threshold (inconclusive) is amber, and every interval in
    ``result.intervals`` is an error bar. Where reality's own score is not 1 (``result.real_baseline``: real takes
    of a stochastic world), a blue marker on each axis shows it, with a "reality" legend.
    """
    names = list(result.scores)
    rows = np.arange(len(names))[::-1]
    colours = [_bar_colour(result, name) for name in names]
    drawn = bars.barh(rows, [result.scores[name] for name in names], color=colours, height=0.6)
    ranged = [index for index, name in enumerate(names) if name in result.intervals]
    if ranged:  # the confidence interval of each axis that has one: an error bar over its bar
        scores = np.array([result.scores[names[index]] for index in ranged])
        lows, highs = (np.array([result.intervals[names[index]][end] for index in ranged]) for end in (0, 1))
        spans = np.stack([np.clip(scores - lows, 0, None), np.clip(highs - scores, 0, None)])
        bars.errorbar(scores, rows[ranged], xerr=spans, fmt="none", ecolor="black", elinewidth=1, capsize=3)
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
    bars.set_title(title, fontsize=9, loc="left")


def _bar_colour(result: GateResult, name: str) -> str:
    """Red for a failing axis, amber where its interval straddles the threshold (inconclusive), else green."""
    if name in result.inconclusive_axes:
        return INCONCLUSIVE_COLOUR
    return FAIL_COLOUR if name in result.failing_axes else PASS_COLOUR


def panel_text(extras: Mapping[str, float]) -> str:
    """The ungated scores as one block of text, or "(none measured)"."""
    return "\n".join(name + value for name, value in panel_lines(extras)) or "(none measured)"


def scorecard_picture(result: GateResult, title: str, ax: Any = None) -> tuple[Any, Any]:
    """The scorecard of one verdict: :func:`draw_scorecard`, with the ungated scores in a panel beside the bars.

    Without ``ax`` the figure is built without pyplot on an Agg canvas (no window, no display, no global figure
    state) and laid out by hand; with ``ax`` the bars go there and the panel as text right of it.

    Returns:
        The figure and the bars' ``Axes``.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed.
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    if ax is not None:
        draw_scorecard(ax, result, title)
        ax.text(1.02, 1, panel_text(result.extras), transform=ax.transAxes, va="top", fontsize=9, family="monospace")
        return ax.figure, ax
    figure = Figure(figsize=(WIDTH, ROW_HEIGHT * len(result.scores) + 1.4), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    bars, fidelity = figure.add_axes((0, 0, 1, 1)), figure.add_axes((0, 0, 1, 1))
    draw_scorecard(bars, result, title)
    fidelity.axis("off")
    fidelity.text(0, 1, panel_text(result.extras), va="top", fontsize=9, family="monospace")
    _place(figure, bars, fidelity, canvas.get_renderer())
    return figure, bars


def scorecard_curves(results: Sequence[GateResult], ax: Any = None) -> tuple[Any, Any]:
    """Every gated axis over a sequence of verdicts: a line per axis, on 0..1, its threshold dashed in its colour.

    Returns:
        The figure and the ``Axes`` drawn in.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed.
        ValueError: If ``results`` is empty.
    """
    if not results:
        raise ValueError("Expected at least one value to plot but got an empty sequence")
    Figure, FigureCanvasAgg = require_matplotlib()
    if ax is None:
        figure = Figure(figsize=(WIDTH, 4.0), dpi=DPI)
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
    names = list(dict.fromkeys(name for result in results for name in result.scores))
    checks = np.arange(len(results))
    for name in names:
        values = [result.scores.get(name, math.nan) for result in results]
        (line,) = ax.plot(checks, values, marker="o", label=name)
        threshold = next(result.thresholds[name] for result in results if name in result.thresholds)
        ax.axhline(threshold, color=line.get_color(), linestyle="--", linewidth=1)
    ax.set_xticks(checks)
    ax.set_xlabel("check")
    ax.set_ylabel("score (dashed: threshold)")
    if all(name in AXES for name in names):
        ax.set_ylim(-0.05, 1.05)
    ax.grid(True)
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure, ax


def _place(figure: Any, bars: Any, fidelity: Any, renderer: Any) -> None:
    """Set the panels' positions by hand, leaving the y tick labels exactly the room they take."""
    width, height = figure.get_size_inches()
    labels = max((label.get_window_extent(renderer).width for label in bars.get_yticklabels()), default=0.0)
    left = (labels / figure.dpi + PAD) / width
    bottom, top = BOTTOM / height, 1 - TOP / height
    bars.set_position((left, bottom, max(BARS_RIGHT - left, 0.05), top - bottom))
    fidelity.set_position((FIDELITY_LEFT, bottom, 1 - FIDELITY_LEFT, top - bottom))


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

    A figure already on an Agg canvas (as :func:`scorecard_picture`'s are) is drawn there; any other gets a fresh one.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed.
    """
    _, FigureCanvasAgg = require_matplotlib()
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
