"""Rollout video grids and their GIF / MP4 encoding within a size budget."""

import io

import numpy as np
import pytest

pytest.importorskip("PIL")

import torch
from PIL import Image

from simgate_tracking.loggers import encode_rollout_grid, encode_video, rollout_grid
from simgate_tracking.loggers.grid import PALETTE
from simgate_tracking.report import RolloutSamples


def _samples(episodes=1, branches=2, steps=3, channels=3, masks=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(episodes, branches, steps, channels, 16, 16, generator=g)
    mask = None
    if masks:
        mask = torch.zeros(episodes, steps, 1, 16, 16, dtype=torch.bool)
        mask[..., 4:9, 4:9] = True
    return RolloutSamples(list(range(episodes)), real, real.clone(), mask)


def _changed(a, b):
    """(T, N, 3) colours and (T,) counts of pixels that differ between two grids."""
    where = (a != b).any(-1)
    return [a[t][where[t]] for t in range(len(a))], where.sum((1, 2))


def test_grid_has_a_frame_per_step_and_a_row_per_episode_and_branch():
    one = rollout_grid(_samples(episodes=1, branches=2, steps=3))
    more = rollout_grid(_samples(episodes=2, branches=3, steps=3))
    assert one.shape[0] == more.shape[0] == 3 and one.dtype == np.uint8 and one.shape[-1] == 3
    cell = 64 + 2  # 16-pixel frames are scaled up 4x, plus the gap
    assert more.shape[1] - one.shape[1] == (6 - 2) * cell
    assert not (one[0] == one[1]).all()  # the frame counter and the frames move


def test_object_masks_are_outlined_in_the_reference_branch_real_and_model_frames():
    plain, outlined = rollout_grid(_samples(masks=False)), rollout_grid(_samples(masks=True))
    colours, counts = _changed(outlined, plain)
    # a 5x5 mask at 4x is a 20x20 square: 76 border pixels, in 2 columns (real, model), in branch 0 only
    assert counts.tolist() == [2 * 76] * 3
    assert all((c == np.array(PALETTE[0], dtype=np.uint8)).all() for c in colours)


def test_difference_column_lights_up_where_the_model_differs():
    samples = _samples(branches=2)
    real = torch.zeros_like(samples.real)
    model = real.clone()
    model[0, 1] = 1.0  # branch 1 turns white in the model only
    same = rollout_grid(RolloutSamples([0], real, real))
    differs = rollout_grid(RolloutSamples([0], real, model))
    colours, counts = _changed(differs, same)
    assert counts.tolist() == [2 * 64 * 64] * 3  # the model cell and the difference cell of branch 1
    assert all((c == 255).all() for c in colours)


def test_column_titles_change_only_the_header():
    samples = _samples(branches=2)
    default, titled = rollout_grid(samples), rollout_grid(samples, columns=("happened", "expected", "error"))
    rows = np.nonzero((default != titled).any(-1).any(0))[0]
    assert len(rows) and rows.max() < default.shape[1] - 2 * (64 + 2)  # above the two rows of cells


def test_grayscale_and_uint8_frames_are_accepted():
    gray = _samples(channels=1)
    as_rgb = RolloutSamples([0], gray.real.expand(-1, -1, -1, 3, -1, -1), gray.model.expand(-1, -1, -1, 3, -1, -1))
    assert (rollout_grid(gray) == rollout_grid(as_rgb)).all()
    quantised = (gray.real * 255).round().to(torch.uint8)
    assert (rollout_grid(RolloutSamples([0], quantised, quantised)) == rollout_grid(as_rgb)).all()


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        (RolloutSamples([0], torch.rand(1, 2, 3, 16, 16), torch.rand(1, 2, 3, 16, 16)), r"samples.real` .* \(1, 2, 3"),
        (
            RolloutSamples([0], torch.rand(1, 2, 3, 2, 8, 8), torch.rand(1, 2, 3, 2, 8, 8)),
            "1, 3 or 4 channels but got 2",
        ),
        (RolloutSamples([0], torch.rand(1, 2, 3, 3, 8, 8), torch.rand(1, 2, 4, 3, 8, 8)), "shape of `samples.real`"),
        (
            RolloutSamples([0, 1], torch.rand(1, 2, 3, 3, 8, 8), torch.rand(1, 2, 3, 3, 8, 8)),
            "hold 1 indices but got 2",
        ),
        (
            RolloutSamples([0], torch.rand(1, 2, 3, 3, 8, 8), torch.rand(1, 2, 3, 3, 8, 8), torch.ones(1, 3, 1, 4, 4)),
            r"`samples.masks` of shape \(S, T, M, H, W\) = \(1, 3, M, 8, 8\) but got \(1, 3, 1, 4, 4\)",
        ),
    ],
)
def test_bad_samples_raise_naming_the_field(samples, match):
    with pytest.raises(ValueError, match=match):
        rollout_grid(samples)


def test_gif_has_every_frame_and_the_frame_rate():
    frames = rollout_grid(_samples(steps=5))
    gif = Image.open(io.BytesIO(encode_video(frames, "gif", fps=5)))
    assert gif.n_frames == 5 and gif.info["loop"] == 0 and gif.info["duration"] == 200
    assert gif.size == (frames.shape[2], frames.shape[1])


def test_mp4_has_every_frame(tmp_path):
    ffmpeg = pytest.importorskip("imageio_ffmpeg")  # MP4 is optional; GIF needs Pillow alone
    path = encode_rollout_grid(_samples(steps=5), tmp_path / "rollouts.mp4", caption="step 3")
    frames, seconds = ffmpeg.count_frames_and_secs(str(path))
    assert frames == 5 and seconds == pytest.approx(5 / 4.0)


NOISE = np.random.default_rng(0).integers(0, 256, (6, 128, 128, 3), dtype=np.uint8)  # incompressible


@pytest.mark.parametrize("video_format", ["gif", "mp4"])
def test_encoder_respects_the_size_budget(video_format):
    if video_format == "mp4":
        pytest.importorskip("imageio_ffmpeg")
    full = len(encode_video(NOISE, video_format, max_bytes=10**9))
    assert full > 40_000
    for max_bytes in (40_000, 10_000):
        assert len(encode_video(NOISE, video_format, max_bytes=max_bytes)) <= max_bytes


def test_a_budget_too_small_for_any_encoding_raises():
    frames = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"fit in `max_bytes`=100 but its smallest encoding \(gif\) takes \d+ bytes"):
        encode_video(frames, "gif", max_bytes=100)


@pytest.mark.parametrize(
    ("frames", "options", "match"),
    [
        (np.zeros((2, 8, 8, 3), dtype=np.float32), {}, r"uint8 array of shape \(T, H, W, 3\) but got float32"),
        (np.zeros((0, 8, 8, 3), dtype=np.uint8), {}, "at least one frame but got 0"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), {"format": "avi"}, "`format` to be 'gif' or 'mp4' but got 'avi'"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), {"fps": 0}, "`fps` to be a positive number but got 0"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), {"max_bytes": 0}, "`max_bytes` to be a positive int but got 0"),
    ],
)
def test_bad_encoder_arguments_raise_naming_the_argument(frames, options, match):
    with pytest.raises(ValueError, match=match):
        encode_video(frames, **options)


def test_grid_file_suffix_picks_the_format(tmp_path):
    gif = encode_rollout_grid(_samples(steps=4), tmp_path / "a" / "rollouts.GIF")
    assert Image.open(gif).n_frames == 4
    with pytest.raises(ValueError, match="`path` to end in .gif or .mp4 but got '.*rollouts.webm'"):
        encode_rollout_grid(_samples(), tmp_path / "rollouts.webm")
