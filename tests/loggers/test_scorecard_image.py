"""The scorecard picture drawn with Pillow: its pixels show every axis's verdict, score, threshold and frame quality."""

import io
import re
import sys

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("tensorboard")

from PIL import Image, ImageFont
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from simgate_tracking import AXES, SimulatorGate
from simgate_tracking.loggers import TensorBoardGateLogger, scorecard_image
from simgate_tracking.loggers.figures import FAIL_COLOUR, PASS_COLOUR, REALITY_COLOUR, WEAKEST_EDGE
from simgate_tracking.loggers.scorecard_image import BOTTOM, LEGEND, PANEL_LEFT, TOP, _font
from simgate_tracking.report import GateCheck
from tests.helpers.dashboard_checks import make_checks

MIXED = {
    "controllability": 0.9,
    "temporal_consistency": 0.4,
    "object_persistence": 0.7,
    "reset_reproducibility": 0.8,
    "task_validity": 0.3,
}
LONG_NAME = "a_custom_axis_named_by_a_user_who_likes_to_say_exactly_what_it_measures_and_then_some_more_words"


def _check(scores, gate=None, step=10):
    return GateCheck((gate or SimulatorGate()).evaluate(scores), step=step, epoch=0, manifest_hash="0")


def _is(pixels, colour):
    return (pixels == [int(colour[i : i + 2], 16) for i in (1, 3, 5)]).all(-1)


def _runs(indices):
    """Consecutive runs of sorted indices as (first, last) pairs."""
    if indices.size == 0:
        return []
    groups = np.split(indices, np.flatnonzero(np.diff(indices) > 1) + 1)
    return [(int(group[0]), int(group[-1])) for group in groups]


def _bars(pixels):
    """Each bar, top to bottom: (colour, first row, last row, first column, last column)."""
    found = []
    for colour in (PASS_COLOUR, FAIL_COLOUR):
        mask = _is(pixels, colour)
        for top, bottom in _runs(np.flatnonzero(mask.any(1))):
            columns = np.flatnonzero(mask[top : bottom + 1].any(0))
            found.append((colour, top, bottom, int(columns[0]), int(columns[-1])))
    return sorted(found, key=lambda bar: bar[1])


@pytest.mark.parametrize("check", [_check(MIXED), make_checks(steps=(300,), vanish_at=(300,))[0]])
def test_failing_axes_are_red_passing_green_each_with_its_score_printed(check):
    pixels = scorecard_image(check)
    result = check.result
    drawn = [name for name in result.scores if result.scores[name] > 0]  # a zero score has no bar to fill
    bars = _bars(pixels)
    assert [colour for colour, *_ in bars] == [FAIL_COLOUR if n in result.failing_axes else PASS_COLOUR for n in drawn]
    for _, top, bottom, _, end in bars:
        beside = pixels[top : bottom + 1, end + 1 : end + 45]
        inside = pixels[top : bottom + 1, end - 45 : end]
        # the score is printed in dark ink past the bar's end, or in white inside a bar too long to leave room
        assert (beside.max(-1) < 100).sum() > 20 or (inside.min(-1) > 230).sum() > 20


def test_bar_length_is_proportional_to_the_score_from_a_common_start():
    short = _bars(scorecard_image(_check(MIXED | {"controllability": 0.35})))[0]
    long = _bars(scorecard_image(_check(MIXED)))[0]
    assert short[3] == long[3]
    assert (long[4] - long[3] + 1) / (short[4] - short[3] + 1) == pytest.approx(0.9 / 0.35, rel=0.02)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_threshold_tick_is_black_where_the_threshold_falls_on_the_bar_scale(threshold):
    pixels = scorecard_image(_check({"controllability": 1.0}, SimulatorGate(threshold)))
    (_, top, _, start, end) = _bars(pixels)[0]
    per_unit = end - start + 1  # pixels per unit score: the bar is 1.0 long
    above_bar = pixels[top - 4, start:]  # the tick reaches past the bar, where only the tick is drawn
    (first, last), *rest = _runs(np.flatnonzero(_is(above_bar, "#000000")))
    assert not rest and (first + last) / 2 == pytest.approx(threshold * per_unit, abs=2)


def test_only_the_weakest_axis_is_outlined():
    pixels = scorecard_image(_check(MIXED))
    for (_, top, bottom, start, end), name in zip(_bars(pixels), AXES, strict=True):
        ring = np.concatenate(
            [pixels[top - 1, start : end + 1], pixels[bottom + 1, start : end + 1], pixels[top : bottom + 1, end + 1]]
        )
        outlined = _is(ring, WEAKEST_EDGE).mean()
        assert outlined > 0.9 if name == "task_validity" else outlined == 0, name


def test_a_long_custom_axis_name_is_shortened_to_leave_the_bars_their_room():
    gate = SimulatorGate({"controllability": 0.65, LONG_NAME: 0.5})
    pixels = scorecard_image(_check({"controllability": 0.9, LONG_NAME: 0.3}, gate))
    height, width, _ = pixels.shape
    assert width == 750
    bars = _bars(pixels)
    assert [colour for colour, *_ in bars] == [PASS_COLOUR, FAIL_COLOUR]
    start = bars[1][3]
    assert start < width / 2  # the bars start left of the middle however long the name
    label = pixels[bars[1][1] : bars[1][2] + 1, :start]
    assert (label.max(-1) < 100).sum() > 100  # the name is drawn left of its bar
    # nothing runs off the picture: title and labels leave the outer columns white
    assert (pixels[:, :4] == 255).all() and (pixels[:TOP, -4:] == 255).all()


@pytest.mark.parametrize(
    ("extras", "gate", "lines"),
    [
        ({}, None, 0),
        ({"psnr": 31.0}, None, 3),
        ({"psnr": 31.0, "ssim": 0.8, "delta_psnr": 2.5}, None, 5),
        ({"psnr": 31.0, "ssim": 0.8}, SimulatorGate({"psnr": 25.0}), 3),  # a gated PSNR is a bar, not a panel line
    ],
)
def test_frame_quality_panel_lists_the_ungated_extras_only_when_there_are_some(extras, gate, lines):
    scores = dict.fromkeys(AXES, 0.6)
    pixels = scorecard_image(_check(scores | extras, gate))
    panel = pixels[TOP : pixels.shape[0] - BOTTOM, PANEL_LEFT:]  # above the x axis, right of where bars end
    text_lines = _runs(np.flatnonzero((panel.max(-1) < 128).any(1)))
    assert len(text_lines) == lines
    assert len(_bars(pixels)) == len(AXES) + (gate is not None)


def test_same_check_same_pixels_and_the_height_grows_with_the_axes():
    one, five = _check({"controllability": 0.9}), _check(MIXED)
    assert np.array_equal(scorecard_image(five), scorecard_image(five))
    pixels = scorecard_image(one)
    assert pixels.dtype == np.uint8 and pixels.shape[1:] == (750, 3) and pixels.flags.writeable
    assert scorecard_image(five).shape[0] > pixels.shape[0]
    assert (pixels[: TOP - 4].max(-1) < 100).sum() > 100  # the title line above the bars


def test_without_freetype_pillows_bitmap_font_draws_the_same_bars(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL._imagingft", None)  # what a Pillow built without FreeType lacks
    monkeypatch.setattr(ImageFont, "core", object())
    _font.cache_clear()
    try:
        assert not hasattr(_font(13), "size")  # the bitmap font, not the scalable one
        pixels = scorecard_image(_check(MIXED))
    finally:
        _font.cache_clear()
    assert [bar[0] for bar in _bars(pixels)] == [PASS_COLOUR, FAIL_COLOUR, PASS_COLOUR, PASS_COLOUR, FAIL_COLOUR]
    assert (pixels[: TOP - 4].max(-1) < 100).sum() > 100  # the title is drawn


def test_missing_pillow_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install simgate-tracking[media]")):
        scorecard_image(_check(MIXED))


def test_tensorboard_logs_this_picture_as_the_scorecard(tmp_path):
    check = make_checks(steps=(300,), vanish_at=(300,))[0]
    writer = SummaryWriter(str(tmp_path))
    TensorBoardGateLogger(writer).log_check(check)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    (event,) = events.Images("simgate/scorecard")
    logged = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
    assert np.array_equal(logged, scorecard_image(check))


def test_reality_below_1_gets_a_mark_on_every_axis_and_a_legend():
    reality = dict.fromkeys(AXES, 1.0) | {"object_persistence": 0.55, "temporal_consistency": 0.9}
    one, ones = _check(MIXED), GateCheck(SimulatorGate().evaluate(MIXED, dict.fromkeys(AXES, 1.0)), 10, 0, "0")
    takes = GateCheck(SimulatorGate().evaluate(MIXED, reality), step=10, epoch=0, manifest_hash="0")
    assert np.array_equal(scorecard_image(one), scorecard_image(ones))  # one real take: the picture as it was
    assert not _is(scorecard_image(one), REALITY_COLOUR).any()
    pixels = scorecard_image(takes)
    assert pixels.shape[0] == scorecard_image(one).shape[0] + LEGEND  # the legend's line under the x axis
    bars = _bars(pixels)
    assert [bar[0] for bar in bars] == [bar[0] for bar in _bars(scorecard_image(one))]
    per_unit = (bars[0][4] - bars[0][3] + 1) / MIXED["controllability"]
    for (_, top, bottom, start, _), name in zip(bars, AXES, strict=True):
        columns = np.flatnonzero(_is(pixels[top : bottom + 1], REALITY_COLOUR).any(0))
        assert columns.size and columns.mean() == pytest.approx(start + reality[name] * per_unit, abs=2), name
        above = _is(pixels[top - 12 : top - 1], REALITY_COLOUR)  # the triangle over the bar points at the mark
        assert above.sum() > 20 and abs(np.flatnonzero(above.any(0)).mean() - columns.mean()) <= 2, name
    legend = pixels[-LEGEND:]
    assert _is(legend, REALITY_COLOUR).sum() > 20 and (legend.max(-1) < 100).sum() > 100  # marker and "reality"
