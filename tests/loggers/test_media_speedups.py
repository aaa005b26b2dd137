"""The cheap media path keeps what the dashboards show: GIF colours, the scorecard's layout, the grid's pixels."""

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("PIL")

import torch
from matplotlib.figure import Figure
from PIL import Image

from simgate_tracking import AXES, SimulatorGate
from simgate_tracking.loggers import encode_video, figure_to_array, rollout_grid, scorecard_figure
from simgate_tracking.loggers.grid import PALETTE
from simgate_tracking.report import GateCheck, RolloutSamples
from tests.helpers.scenes import make_scene


def _decode(gif: bytes) -> np.ndarray:
    """Every frame of a GIF as a viewer shows it, (T, H, W, 3) int."""
    image = Image.open(io.BytesIO(gif))
    frames = []
    for t in range(image.n_frames):
        image.seek(t)
        frames.append(np.asarray(image.convert("RGB")).astype(int))
    return np.stack(frames)


def _scene_grid(seed: int = 0) -> np.ndarray:
    """A rollout grid of the test scene: flat object colours, a textured background, a noisy model, outlines."""
    scene = make_scene(episodes=2, branches=2, steps=6, seed=seed)
    g = torch.Generator().manual_seed(seed)
    model = (scene.targets + 0.05 * torch.randn(scene.targets.shape, generator=g)).clamp(0, 1)
    return rollout_grid(RolloutSamples([0, 1], scene.targets, model, scene.masks), "step 40: FAIL, weakest x")


def test_gif_of_a_rollout_grid_shows_every_frame_in_its_own_colours():
    frames = _scene_grid()
    decoded = _decode(encode_video(frames, "gif"))
    assert decoded.shape == frames.shape
    error = np.abs(decoded - frames).max(-1)
    # 255 colours for ~20k shades of a noisy model: a couple of levels off on average, rare pixels a little more
    assert error.mean() < 3 and np.percentile(error, 99.9) <= 24 and error.max() <= 64
    text = (frames[:, :30] >= 200).all(-1)  # the caption's bright text on the dark header stays bright
    assert text.sum() > 100 and error[:, :30][text].max() <= 16


def test_gif_palette_covers_colours_that_appear_only_in_later_frames():
    frames = np.zeros((6, 48, 48, 3), dtype=np.uint8)
    flat = [(230, 40, 30), (20, 80, 240), (240, 220, 20), (20, 200, 60), (250, 0, 250), (0, 250, 250)]
    for t, colour in enumerate(flat):  # a new colour every frame, each filling a growing square
        frames[t:, 8 : 16 + 4 * t, 8 : 16 + 4 * t] = colour
    decoded = _decode(encode_video(frames, "gif"))
    assert len(decoded) == 6
    assert np.abs(decoded - frames).max() <= 8


def test_gif_sends_unchanged_pixels_as_transparent():
    # two small squares in opposite corners move over an incompressible background: their bounding box is the
    # whole frame, so only leaving the unchanged pixels out keeps later frames small
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    frames = np.repeat(background[None], 8, axis=0)
    for t in range(8):
        frames[t, 2 + t : 8 + t, 2:8] = 255
        frames[t, 88 - t : 94 - t, 88:94] = 0
    one_frame = len(encode_video(frames[:1], "gif", max_bytes=10**9))
    clip = encode_video(frames, "gif", max_bytes=10**9)
    assert len(clip) < 2 * one_frame  # seven more frames cost less than the first; each frame whole would cost 8x
    decoded = _decode(clip)
    for t in range(1, 8):
        assert (decoded[t, 2 + t : 8 + t, 2:8] >= 240).all()  # the white square is where it moved to
        vacated = np.abs(decoded[t, 1 + t, 2:8] - frames[t, 1 + t, 2:8])
        assert vacated.mean() < 40  # the row it left shows the background again (a stale white row: ~128)


def test_gif_of_a_still_clip_with_one_change_animates_and_ends_on_the_change():
    frames = np.zeros((4, 64, 64, 3), dtype=np.uint8)
    frames[:] = (30, 90, 160)
    frames[2:, -8:, -8:] = (250, 250, 250)  # one change halfway
    gif = encode_video(frames, "gif", max_bytes=5_000)
    assert Image.open(io.BytesIO(gif)).n_frames > 1 and len(gif) <= 5_000
    assert np.abs(_decode(gif)[-1] - frames[-1]).max() <= 8


def _check(names_scores: dict[str, float], gate: SimulatorGate | None = None) -> GateCheck:
    result = (gate or SimulatorGate()).evaluate({**names_scores, "psnr": 28.5, "ssim": 0.81})
    return GateCheck(result, step=40, epoch=2, manifest_hash="ab12")


@pytest.mark.parametrize(
    ("scores", "gate"),
    [
        (dict.fromkeys(AXES, 0.7) | {"object_persistence": 0.3}, None),
        ({"controllability": 0.9}, None),
        (
            {"controllability": 0.9, "a_custom_axis_with_a_much_longer_name_than_any_builtin": 0.7},
            SimulatorGate({"controllability": 0.65, "a_custom_axis_with_a_much_longer_name_than_any_builtin": 0.5}),
        ),
    ],
)
def test_scorecard_labels_title_and_panels_fit_inside_the_picture(scores, gate):
    check = _check(scores, gate)
    figure = scorecard_figure(check)
    height, width, _ = figure_to_array(figure).shape
    renderer = figure.canvas.get_renderer()
    bars, fidelity = figure.axes
    labels = bars.get_yticklabels()
    assert [label.get_text() for label in labels] == list(check.result.scores)
    for text in [*labels, *bars.get_xticklabels()]:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, text.get_text()
    title = bars.get_title(loc="left")
    box = next(text for text in bars.texts + [bars._left_title] if text.get_text() == title).get_window_extent(renderer)
    assert 0 <= box.x0 and box.y1 <= height  # the verdict starts in the picture, below its top edge
    assert max(label.get_window_extent(renderer).x0 for label in labels) < bars.get_window_extent(renderer).x0
    assert bars.get_window_extent(renderer).x1 <= fidelity.get_window_extent(renderer).x0  # side by side, apart


def test_figure_to_array_draws_any_figure_and_scorecards_on_their_own_canvas():
    check = _check({"controllability": 0.9, "object_persistence": 0.4})
    figure = scorecard_figure(check)
    assert np.array_equal(figure_to_array(figure), figure_to_array(scorecard_figure(check)))
    plain = Figure(figsize=(2, 1), dpi=50, facecolor="#ff0000")  # no canvas of its own: one is made to draw it
    pixels = figure_to_array(plain)
    assert pixels.shape == (50, 100, 3) and (pixels == (255, 0, 0)).all()


def test_grid_cells_are_the_rounded_frames_scaled_up_by_whole_pixels():
    real = torch.rand(1, 1, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    frames = rollout_grid(RolloutSamples([0], real, real.flip(-1)))
    expected = (real[0, 0] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    expected = expected.repeat(4, axis=1).repeat(4, axis=2)  # 16 pixels scale 4x to 64
    height = frames.shape[1]
    real_cell = frames[:, height - 64 - 2 : height - 2]  # the one row of cells sits at the bottom, above a gap
    columns = [x for x in range(frames.shape[2] - 63) if np.array_equal(real_cell[:, :, x : x + 64], expected)]
    assert len(columns) == 1


def test_outline_of_a_mask_at_the_frame_edge_draws_only_the_inner_sides():
    samples = RolloutSamples([0], torch.zeros(1, 1, 2, 3, 16, 16), torch.zeros(1, 1, 2, 3, 16, 16))
    masks = torch.zeros(1, 2, 1, 16, 16, dtype=torch.bool)
    masks[..., :5, :5] = True  # the top-left corner: the frame's edge is not a border
    outlined = rollout_grid(RolloutSamples([0], samples.real, samples.model, masks))
    coloured = (outlined == np.array(PALETTE[0], dtype=np.uint8)).all(-1).sum((1, 2))
    # 5x5 at 4x is 20x20: its right column and bottom row, 39 pixels, in the real and the model column
    assert coloured.tolist() == [2 * 39] * 2


def test_grid_header_changes_only_in_the_frame_counter():
    frames = _scene_grid()
    changed_rows = np.nonzero((frames[1:] != frames[:1]).any(axis=(0, 2, 3)))[0]
    header = changed_rows[changed_rows < 40]
    assert len(header) and header.min() >= 14  # below the caption's first line: the counter's line only
    counters = frames[:, 14:30, :60]
    assert all(not np.array_equal(counters[t], counters[t + 1]) for t in range(len(frames) - 1))
