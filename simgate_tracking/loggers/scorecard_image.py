"""The scorecard of one check drawn straight to pixels with Pillow: the dashboards' picture at every gate check."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simgate_tracking._utils import require
from simgate_tracking.loggers.text import verdict_line
from simgate_tracking.plotting import (
    AXIS_TICKS,
    FAIL_COLOUR,
    INCONCLUSIVE_COLOUR,
    PASS_COLOUR,
    REALITY_COLOUR,
    WEAKEST_EDGE,
    panel_lines,
    reality_marks,
)
from simgate_tracking.report import GateCheck

WIDTH, ROW, BAR = 750, 44, 26  # pixels: picture width, height per axis, bar thickness
TOP, BOTTOM, PAD, LINE = 34, 32, 10, 17  # title band, tick-label band, margin, panel line height
BARS_RIGHT, PANEL_LEFT = 540, 562  # where the bars end and the frame-quality panel starts, as in the matplotlib chart
MAX_LABEL = 300  # longer axis names are shortened in the middle, so the bars keep room
TEXT_SIZE, VALUE_SIZE = 13, 11
TEXT, GRID, SPINE, THRESHOLD = "#000000", "#e8e8e8", "#333333", "#000000"
ELLIPSIS = "..."  # the bitmap fallback font has no single-glyph ellipsis
LEGEND = 20  # pixels: the band under the tick labels that names reality's marker, drawn only when there are marks
MARK = 5  # pixels: half the width of reality's triangle above a bar
REALITY_LEGEND = "reality: the real world's own score, each real take held out against the others"
INTERVAL_LEGEND = "{level:.0%} confidence interval, bootstrap over probe episodes"
WHISKER, CAP = "#1a1a1a", 6  # the interval's colour, and half the height of its end caps in pixels


def _require_pillow() -> Any:
    require("media", "PIL", "Scorecard pictures (Pillow)")
    from PIL import Image, ImageDraw, ImageFont, features

    return Image, ImageDraw, ImageFont, features


@functools.lru_cache(maxsize=4)
def _font(size: int) -> Any:
    """Pillow's built-in font at ``size`` pixels; its fixed-size bitmap font where Pillow lacks FreeType."""
    _, _, ImageFont, features = _require_pillow()
    return ImageFont.load_default(size=size) if features.check("freetype2") else ImageFont.load_default()


def _fit(text: str, font: Any, width: float) -> str:
    """``text``, shortened in the middle with an ellipsis until it is at most ``width`` pixels wide."""
    if font.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 0:
        keep -= 1
        short = text[: (keep + 1) // 2] + ELLIPSIS + text[len(text) - keep // 2 :]
        if font.getlength(short) <= width:
            return short
    return ELLIPSIS


def _title(check: GateCheck, font: Any, width: float) -> str:
    """The verdict line; a weakest axis name too long for ``width`` is shortened, keeping step and verdict."""
    line = verdict_line(check)
    excess = font.getlength(line) - width
    if excess <= 0:
        return line
    weakest = check.result.weakest_axis
    short = _fit(weakest, font, font.getlength(weakest) - excess)
    return _fit(line.replace(f"weakest {weakest}", f"weakest {short}", 1), font, width)


def _ticks(top: float) -> list[float]:
    """The x tick values: the chart's own in [0, 1], else a 1-2-5 step with at most six ticks up to ``top``."""
    if top <= 1.1:
        return list(AXIS_TICKS)
    step = 10 ** math.floor(math.log10(top / 5))
    step = next(s * step for s in (1, 2, 5, 10) if top / (s * step) <= 5)
    return [i * step for i in range(int(top / step) + 1)]


@dataclass(frozen=True)
class _Layout:
    """Where things go, in pixels: the bars' box, the row height and the x scale."""

    left: int
    right: int
    top: int
    bottom: int
    row: float
    scale_max: float

    def x(self, value: float) -> int:
        """The pixel column of ``value`` on the bars' scale, clipped to the box."""
        return self.left + round(min(max(value, 0.0), self.scale_max) / self.scale_max * (self.right - self.left))

    def y(self, index: int) -> int:
        """The pixel row of the middle of axis ``index``'s bar."""
        return self.top + round((index + 0.5) * self.row)


def _layout(
    check: GateCheck, labels: list[str], font: Any, panel_height: int, marks: dict[int, float] | None = None
) -> _Layout:
    result = check.result
    names = list(result.scores)
    label_width = max(font.getlength(label) for label in labels)
    height = max(ROW * len(names), LINE * panel_height)
    largest = max([*result.scores.values(), *result.thresholds.values(), *(marks or {}).values()])
    # scores in [0, 1] share the matplotlib chart's fixed scale; a gated score past 1 (say PSNR) stretches it
    scale_max = 1.1 if largest <= 1.0 else largest * 1.1
    right = BARS_RIGHT if panel_height else WIDTH - 4 * PAD
    return _Layout(round(PAD + label_width + PAD), right, TOP, TOP + height, height / len(names), scale_max)


def _draw_axes(draw: Any, box: _Layout, font: Any) -> None:
    """Gridlines and x tick labels under the bars, then the left and bottom spines."""
    ascent = font.getbbox("0")[1]
    for tick in _ticks(box.scale_max):
        x = box.x(tick)
        draw.line([(x, box.top), (x, box.bottom)], fill=GRID)
        draw.line([(x, box.bottom), (x, box.bottom + 4)], fill=SPINE)
        label = f"{tick:.1f}" if box.scale_max <= 1.1 else f"{tick:g}"
        draw.text((x - font.getlength(label) / 2, box.bottom + 7 - ascent), label, fill=TEXT, font=font)
    draw.line([(box.left, box.top), (box.left, box.bottom)], fill=SPINE)
    draw.line([(box.left, box.bottom), (box.right, box.bottom)], fill=SPINE)


def _draw_reality(draw: Any, x: int, middle: int) -> None:
    """Reality's own score on one axis: a blue tick through the bar under a small triangle pointing at it."""
    top, bottom = middle - BAR // 2, middle + BAR // 2
    draw.rectangle([x - 1, top, x, bottom - 1], fill=REALITY_COLOUR)
    draw.polygon(
        [(x - MARK, top - 2 - 2 * MARK), (x + MARK - 1, top - 2 - 2 * MARK), (x, top - 2)], fill=REALITY_COLOUR
    )


def _draw_interval(draw: Any, left: int, right: int, middle: int) -> None:
    """An error bar: a line from the interval's low to its high through the bar's middle, with end caps."""
    draw.rectangle([left, middle - 1, right, middle], fill=WHISKER)
    for x in (left, right):
        draw.rectangle([x - 1, middle - CAP, x, middle + CAP], fill=WHISKER)


def _draw_bar(
    draw: Any, check: GateCheck, name: str, index: int, box: _Layout, font: Any, reality: float | None = None
) -> None:
    """One axis: its bar, an outline if weakest, its interval and reality's mark if any, the threshold, the score."""
    result = check.result
    score, middle = result.scores[name], box.y(index)
    end, top, bottom = box.x(score), middle - BAR // 2, middle + BAR // 2
    if name == result.weakest_axis:
        draw.rectangle([box.left - 2, top - 2, end + 1, bottom + 1], outline=WEAKEST_EDGE, width=2)
    if end > box.left:
        colour = FAIL_COLOUR if name in result.failing_axes else PASS_COLOUR
        colour = INCONCLUSIVE_COLOUR if name in result.inconclusive_axes else colour
        draw.rectangle([box.left, top, end - 1, bottom - 1], fill=colour)
    mark = None if reality is None else box.x(reality)
    if mark is not None:
        _draw_reality(draw, mark, middle)
    threshold = box.x(result.thresholds[name])
    draw.rectangle([threshold - 1, middle - round(0.4 * ROW), threshold, middle + round(0.4 * ROW)], fill=THRESHOLD)
    interval = result.intervals.get(name)
    reach = end  # the score is printed past the bar and its error bar
    if interval is not None:
        reach = max(end, box.x(interval[1]) + 1)
        _draw_interval(draw, box.x(interval[0]), box.x(interval[1]), middle)
    value = f"{score:.3f}"
    width, (_, ascent, _, descent) = font.getlength(value), font.getbbox(value)
    x, fill = reach + 4, TEXT
    if mark is not None and reach <= mark + 1 and mark - 1 <= x + width:  # reality's tick would cross the score
        x = mark + 4
    if x + width > box.right + 2 * PAD:  # no room past a full bar: print the score inside its end instead
        x, fill = end - 4 - width, "#ffffff"
    draw.text((x, middle - (ascent + descent) / 2), value, fill=fill, font=font)


def _draw_legend(draw: Any, top: int, left: int, font: Any, level: float | None = None) -> None:
    """A line under the x axis that names reality's mark, or with ``level`` the error bars."""
    x, middle = left + MARK, top + LEGEND // 2
    if level is None:
        draw.polygon(
            [(x - MARK, middle - MARK), (x + MARK - 1, middle - MARK), (x, middle + MARK - 1)], fill=REALITY_COLOUR
        )
    else:
        _draw_interval(draw, x - MARK, x + MARK, middle)
    ascent, descent = font.getbbox("Ag")[1::2]
    legend = REALITY_LEGEND if level is None else INTERVAL_LEGEND.format(level=level)
    text = _fit(legend, font, WIDTH - PAD - (x + 2 * MARK))
    draw.text((x + 2 * MARK, middle - (ascent + descent) / 2), text, fill=TEXT, font=font)


def _draw_panel(draw: Any, check: GateCheck, top: int, font: Any) -> None:
    """The panel of ungated scores, each group under its own heading: frame quality, decisions, other scores."""
    room = WIDTH - PANEL_LEFT - PAD
    for i, (name, number) in enumerate(panel_lines(check.result.extras)):
        line = _fit(name, font, room - font.getlength(number)) + number if number else name
        draw.text((PANEL_LEFT, top + i * LINE), line, fill=TEXT, font=font)


def scorecard_image(check: GateCheck) -> np.ndarray:
    """Draw one check's scorecard as an (H, W, 3) uint8 RGB picture, 750 pixels wide, with Pillow.

    The picture shows what :func:`~simgate_tracking.loggers.scorecard_figure` shows, at a fraction of its cost:
    a horizontal bar per gated axis, green above its threshold and red at or below it, the threshold as a black
    tick, the weakest axis outlined, each score printed at its bar and the axis names on the left; a title with the
    step, the verdict and the weakest axis; and, when the check holds ungated extras, a separate panel listing them
    under their headings, each "(not gated)": frame quality (PSNR, SSIM, delta-PSNR), decisions
    (``decision_no_regret``, ``planning_success``) and other scores. An axis with a confidence interval
    (``result.intervals``) gets an error bar from its low to its high end, its bar amber where the interval holds the
    threshold (inconclusive), and a line under the x axis names the level.
    Where reality's own score is not 1 on some axis
    (``result.real_baseline``: real takes of a stochastic world, each held out against the others), each axis also
    gets a blue tick under a small triangle at reality's score, and a line under the x axis names it "reality"; a
    result of one real take (1 on every axis) draws none of it. Scores in [0, 1] are drawn on a 0 to 1.1 scale; a gated
    score past 1 stretches it. Names too long for the picture are shortened in the middle. The same check always
    gives the same pixels. Text uses Pillow's built-in font, so no font file is needed.

    Args:
        check: The gate check to draw.

    Returns:
        A ``numpy`` array of shape (H, W, 3) and dtype uint8, W = 750 and H growing with the number of axes.

    Raises:
        ModuleNotFoundError: If Pillow is not installed.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64, "psnr": 31.0})
        >>> pixels = scorecard_image(GateCheck(result, step=120, epoch=3, manifest_hash="ab12"))
        >>> pixels.shape, pixels.dtype
        ((154, 750, 3), dtype('uint8'))
    """
    Image, ImageDraw, _, _ = _require_pillow()
    text, small = _font(TEXT_SIZE), _font(VALUE_SIZE)
    names = list(check.result.scores)
    labels = [_fit(name, text, MAX_LABEL) for name in names]
    panel_height = len(panel_lines(check.result.extras))
    marks = reality_marks(check.result.real_baseline, names)
    box = _layout(check, labels, text, panel_height, marks)
    legends = ([None] if marks else []) + ([check.result.confidence_level] if check.result.intervals else [])
    image = Image.new("RGB", (WIDTH, box.bottom + BOTTOM + LEGEND * len(legends)), "#ffffff")
    draw = ImageDraw.Draw(image)
    _draw_axes(draw, box, text)
    ascent, descent = text.getbbox("Ag")[1::2]
    for index, (name, label) in enumerate(zip(names, labels, strict=True)):
        _draw_bar(draw, check, name, index, box, small, marks.get(index))
        x = box.left - PAD - text.getlength(label)
        draw.text((x, box.y(index) - (ascent + descent) / 2), label, fill=TEXT, font=text)
    draw.text((PAD, (TOP - ascent - descent) / 2), _title(check, text, WIDTH - 2 * PAD), fill=TEXT, font=text)
    if panel_height:
        _draw_panel(draw, check, box.top, text)
    for row, level in enumerate(legends):
        _draw_legend(draw, box.bottom + BOTTOM - 4 + row * LEGEND, box.left, small, level)
    return np.array(image)
