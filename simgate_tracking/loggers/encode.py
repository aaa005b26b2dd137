"""Encode video frames as an animated GIF (Pillow) or MP4 (imageio-ffmpeg) within a size budget, without moviepy."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np

from simgate_tracking._utils import check_positive_int
from simgate_tracking.loggers.grid import require_pillow, rollout_grid
from simgate_tracking.report import RolloutSamples

VideoFormat = Literal["gif", "mp4"]
DEFAULT_MAX_BYTES = 2_000_000
MIN_SIDE = 32  # below this a shrunk video shows nothing worth its bytes
GIF_COLOURS = 255  # the 256th palette index marks pixels unchanged since the previous frame
UNCHANGED = GIF_COLOURS


def default_video_format() -> VideoFormat:
    """``"mp4"`` when imageio-ffmpeg is installed (smaller files), else ``"gif"`` (Pillow alone)."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ModuleNotFoundError:
        return "gif"
    return "mp4"


def _gif(frames: np.ndarray, fps: float) -> bytes:
    """One palette for the whole clip, pixels unchanged since the previous frame left transparent."""
    Image, _, _ = require_pillow()
    count, height, width, _ = frames.shape
    # every frame quantised at once: one shared palette, and a colour seen in one frame only still gets an entry
    clip = Image.fromarray(np.ascontiguousarray(frames).reshape(count * height, width, 3))
    indexed = clip.quantize(GIF_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette = indexed.getpalette()[: 3 * GIF_COLOURS]
    palette += [0] * (3 * 256 - len(palette))
    indices = np.asarray(indexed).reshape(count, height, width).copy()
    # what the viewer already shows need not be sent again: transparent runs compress to almost nothing
    indices[1:][indices[1:] == indices[:-1]] = UNCHANGED
    images = []
    for frame in indices:
        image = Image.frombytes("P", (width, height), frame.tobytes())
        image.putpalette(palette)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        transparency=UNCHANGED,
        disposal=1,  # keep each frame under the next, so its transparent pixels show the one before
        optimize=False,  # Pillow's palette optimisation costs a pass per frame and saves little on a shared palette
    )
    return buffer.getvalue()


def _mp4(frames: np.ndarray, fps: float) -> bytes:
    try:
        import imageio_ffmpeg
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "MP4 videos need imageio-ffmpeg: install it with `pip install imageio-ffmpeg`"
        ) from err
    _, height, width, _ = frames.shape
    # yuv420p needs even sides
    frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rollout.mp4")
        writer = imageio_ffmpeg.write_frames(
            path,
            (frames.shape[2], frames.shape[1]),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame).tobytes())
        writer.close()
        return Path(path).read_bytes()


def _shrink(frames: np.ndarray, halve_size: bool) -> np.ndarray | None:
    """Half the resolution or every other frame; None when nothing more can go."""
    _, height, width, _ = frames.shape
    if halve_size and min(height, width) // 2 >= MIN_SIDE:
        Image, _, _ = require_pillow()
        size = (width // 2, height // 2)
        return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BOX)) for f in frames])
    if len(frames) > 2:
        return frames[::2]
    return _shrink(frames, True) if not halve_size else None


def encode_video(
    frames: np.ndarray, format: VideoFormat = "gif", fps: float = 4.0, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """Encode (T, H, W, 3) uint8 RGB frames as an animated GIF or an MP4 of at most ``max_bytes`` bytes.

    A video over budget is shrunk and encoded again, halving its resolution and dropping every other frame in
    turn, until it fits.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames, T >= 1.
        format: ``"gif"`` (Pillow) or ``"mp4"`` (H.264, needs imageio-ffmpeg).
        fps: Frames per second.
        max_bytes: The size budget of the encoded video.

    Returns:
        The encoded file's bytes.

    Raises:
        ValueError: On a bad argument, or if even the smallest encoding exceeds ``max_bytes``.
        ModuleNotFoundError: If Pillow (GIF) or imageio-ffmpeg (MP4) is not installed.

    Example:
        >>> import numpy as np
        >>> frames = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
        >>> gif = encode_video(frames, "gif", max_bytes=100_000)
        >>> gif[:6], len(gif) <= 100_000
        (b'GIF89a', True)
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"Expected `frames` to be a uint8 array of shape (T, H, W, 3) but got {got}")
    if len(frames) == 0:
        raise ValueError("Expected `frames` to hold at least one frame but got 0")
    if format not in ("gif", "mp4"):
        raise ValueError(f"Expected argument `format` to be 'gif' or 'mp4' but got {format!r}")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0:
        raise ValueError(f"Expected argument `fps` to be a positive number but got {fps!r}")
    check_positive_int(max_bytes, "max_bytes")
    encode = _gif if format == "gif" else _mp4
    attempt: np.ndarray | None = frames
    halve_size = True
    while attempt is not None:
        data = encode(attempt, fps)
        if len(data) <= max_bytes:
            return data
        smallest = len(data)
        attempt, halve_size = _shrink(attempt, halve_size), not halve_size
    raise ValueError(
        f"Expected the rollout video to fit in `max_bytes`={max_bytes} but its smallest encoding "
        f"({format}) takes {smallest} bytes"
    )


def encode_rollout_grid(
    samples: RolloutSamples,
    path: str | os.PathLike[str],
    caption: str = "",
    fps: float = 4.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Path:
    """Draw sample rollouts as a real | model | difference grid (see :func:`rollout_grid`) and save it as a video.

    Args:
        samples: Rollouts of a few probe episodes.
        path: Where the video goes; its suffix picks the format, ``.gif`` or ``.mp4``.
        caption: Text drawn above the grid, e.g. the step and the verdict.
        fps: Frames per second.
        max_bytes: The size budget of the file.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If the suffix is neither ``.gif`` nor ``.mp4``, or the video cannot fit in ``max_bytes``.

    Example:
        >>> import tempfile, torch
        >>> from PIL import Image
        >>> real = torch.rand(1, 2, 4, 3, 16, 16)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = encode_rollout_grid(RolloutSamples([3], real, real), f"{tmp}/rollouts.gif", "step 7")
        ...     Image.open(path).n_frames
        4
    """
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("gif", "mp4"):
        raise ValueError(f"Expected `path` to end in .gif or .mp4 but got {str(path)!r}")
    data = encode_video(rollout_grid(samples, caption), format=suffix, fps=fps, max_bytes=max_bytes)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
