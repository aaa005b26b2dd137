"""Scorecard pictures and tables of one check: the bar chart, the verdict table, the per-episode table."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex

from simgate_tracking import AXES
from simgate_tracking.loggers import figure_to_array, scorecard_figure
from simgate_tracking.loggers.figures import FAIL_COLOUR, PASS_COLOUR
from simgate_tracking.loggers.text import episode_table, scores_markdown
from tests.helpers.dashboard_checks import make_checks


@pytest.fixture(scope="module")
def failing():
    return make_checks()[-1]


def test_bar_chart_has_a_bar_per_axis_coloured_by_verdict_with_thresholds(failing):
    figure = scorecard_figure(failing)
    bars, fidelity = figure.axes
    result = failing.result
    assert [tick.get_text() for tick in bars.get_yticklabels()] == list(AXES)
    bar_of = {label.get_text(): patch for label, patch in zip(bars.get_yticklabels(), bars.patches, strict=True)}
    assert {axis: bar.get_width() for axis, bar in bar_of.items()} == pytest.approx(result.scores)
    colours = {axis: to_hex(bar.get_facecolor()) for axis, bar in bar_of.items()}
    assert {axis for axis, colour in colours.items() if colour == FAIL_COLOUR} == set(result.failing_axes)
    assert {axis for axis, colour in colours.items() if colour == PASS_COLOUR} == set(AXES) - set(result.failing_axes)
    outlined = [axis for axis, bar in bar_of.items() if bar.get_linewidth() == 2]
    assert outlined == [result.weakest_axis] == ["object_persistence"]
    (ticks,) = bars.collections
    assert [segment[0][0] for segment in ticks.get_segments()] == pytest.approx([0.65] * len(AXES))
    assert bars.get_title(loc="left") == "step 300: FAIL, weakest object_persistence 0.000 (threshold 0.65)"
    (text,) = fidelity.texts
    assert "not gated" in text.get_text() and f"psnr: {result.extras['psnr']:.3f}" in text.get_text()


def test_bar_chart_renders_to_pixels_with_both_colours(failing):
    pixels = figure_to_array(scorecard_figure(failing))
    assert pixels.dtype == np.uint8 and pixels.shape[-1] == 3
    for colour in (FAIL_COLOUR, PASS_COLOUR):
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
        assert (pixels == rgb).all(-1).sum() > 100, colour


def test_verdict_table_lists_every_axis_and_extra(failing):
    text = scores_markdown(failing)
    for axis in AXES:
        status = "FAIL" if axis in failing.result.failing_axes else "pass"
        assert f"| {axis} | {failing.result.scores[axis]:.3f} | 0.650 | {status}" in text
    assert f"manifest `{failing.manifest_hash[:12]}`" in text and "probe `squares`" in text


def test_episode_table_has_a_row_per_episode_in_probe_order(failing):
    columns, rows = episode_table(failing)
    assert columns[0] == "episode" and columns[1:] == [k for k in failing.episode_scores if k != "episode_index"]
    assert [row[0] for row in rows] == failing.episode_scores["episode_index"] == [0, 1, 2, 3]
    for i, axis in enumerate(columns[1:], start=1):
        assert [row[i] for row in rows] == pytest.approx(failing.episode_scores[axis])


def test_bar_chart_draws_each_interval_as_an_error_bar_and_an_inconclusive_axis_amber(failing):
    from dataclasses import replace

    from simgate_tracking import SimulatorGate
    from simgate_tracking.plotting import INCONCLUSIVE_COLOUR

    scores = dict.fromkeys(AXES, 0.9) | {"object_persistence": 0.66, "task_validity": 0.3}
    intervals = {axis: (score - 0.05, min(1.0, score + 0.05)) for axis, score in scores.items()}
    intervals["object_persistence"] = (0.55, 0.75)  # holds the 0.65 threshold: inconclusive
    result = SimulatorGate().evaluate(scores, intervals=intervals)
    assert result.inconclusive_axes == ("object_persistence",)
    bars = scorecard_figure(replace(failing, result=result)).axes[0]
    bar_of = {label.get_text(): patch for label, patch in zip(bars.get_yticklabels(), bars.patches, strict=True)}
    colours = {axis: to_hex(bar.get_facecolor()) for axis, bar in bar_of.items()}
    assert colours["object_persistence"] == INCONCLUSIVE_COLOUR
    assert colours["task_validity"] == FAIL_COLOUR and colours["controllability"] == PASS_COLOUR
    # one horizontal error segment per axis, from its interval's low end to its high end, at its bar's height
    (errors,) = [c for c in bars.collections if len(c.get_segments()) == len(AXES) and c.get_linewidth()[0] == 1]
    spans = {}
    for segment in errors.get_segments():
        (x0, y), (x1, _) = segment
        axis = next(name for name, bar in bar_of.items() if abs(bar.get_y() + bar.get_height() / 2 - y) < 1e-6)
        spans[axis] = (x0, x1)
    assert {axis: pytest.approx(span) for axis, span in spans.items()} == intervals
