"""Sample rollouts as one video grid: real | model | difference for every action branch, object masks outlined."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simgate_tracking._utils import require
from simgate_tracking.report import RolloutSamples

COLUMNS = ("real", "model", "|model - real|")
MIN_CELL = 64  # small frames are scaled up (nearest) to at least this many pixels, so a dashboard shows them
GAP = 2
# one outline colour per object slot, cycling: distinct on natural images and on each other
PALETTE = ((255, 64, 64), (64, 255, 64), (64, 160, 255), (255, 220, 0), (255, 0, 255), (0, 255, 255))


def require_pillow() -> Any:
    """Pillow's ``Image``, ``ImageDraw`` and ``ImageFont``; a missing Pillow names the extra to install."""
    require("media", "PIL", "Rollout videos (Pillow)")
    from PIL import Image, ImageDraw, ImageFont

    return Image, ImageDraw, ImageFont


def _check_samples(samples: RolloutSamples) -> None:
    real, model = samples.real, samples.model
    for name, frames in (("real", real), ("model", model)):
        if not isinstance(frames, Tensor) or frames.ndim != 6:
            got = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
            raise ValueError(f"Expected `samples.{name}` to be a tensor of shape (S, K+1, T, C, H, W) but got {got}")
        if frames.shape[3] not in (1, 3, 4):
            raise ValueError(f"Expected `samples.{name}` to have 1, 3 or 4 channels but got {frames.shape[3]}")
    if real.shape != model.shape:
        raise ValueError(
            f"Expected `samples.model` to have the shape of `samples.real` {tuple(real.shape)} "
            f"but got {tuple(model.shape)}"
        )
    if len(samples.episode_index) != real.shape[0]:
        raise ValueError(
            f"Expected `samples.episode_index` to hold {real.shape[0]} indices but got {len(samples.episode_index)}"
        )
    if samples.masks is not None:
        s, _, t, _, h, w = real.shape
        m = samples.masks
        if m.ndim != 5 or (m.shape[0], m.shape[1], m.shape[3], m.shape[4]) != (s, t, h, w):
            raise ValueError(
                f"Expected `samples.masks` of shape (S, T, M, H, W) = ({s}, {t}, M, {h}, {w}) but got {tuple(m.shape)}"
            )


def _rgb(frames: Tensor) -> Tensor:
    """(..., C, H, W) float in [0, 1] or uint8 -> (..., 3, H, W) float in [0, 1]."""
    frames = frames.detach().cpu()
    frames = frames.float() / 255 if frames.dtype == torch.uint8 else frames.float()
    frames = torch.nan_to_num(frames, nan=0.0).clamp(0, 1)
    return frames.expand(*frames.shape[:-3], 3, *frames.shape[-2:]) if frames.shape[-3] == 1 else frames[..., :3, :, :]


def _outline(masks: np.ndarray, scale: int) -> np.ndarray:
    """(T, M, H, W) bool -> (T, M, H*scale, W*scale) bool: the masks' one-pixel borders at display size."""
    big = np.repeat(np.repeat(masks, scale, axis=-2), scale, axis=-1)
    # erosion by a 3x3 square, one direction at a time; pixels past the edge do not count
    rows = big.copy()
    rows[..., 1:, :] &= big[..., :-1, :]
    rows[..., :-1, :] &= big[..., 1:, :]
    eroded = rows.copy()
    eroded[..., 1:] &= rows[..., :-1]
    eroded[..., :-1] &= rows[..., 1:]
    return big & ~eroded


def _cells(samples: RolloutSamples, scale: int) -> np.ndarray:
    """(rows, columns, T, h, w, 3) uint8: every cell of the grid, upscaled, outlines drawn."""
    real, model = _rgb(samples.real), _rgb(samples.model)
    # the square root lifts small errors into view while 0 stays black and 1 stays white
    diff = (model - real).abs().mean(dim=-3, keepdim=True).sqrt().expand_as(real)
    cells = torch.stack([real, model, diff], dim=2)  # (S, K+1, 3, T, 3, H, W)
    # to bytes before upscaling: rounding commutes with nearest-neighbour, and bytes are a quarter of the copying
    small = (cells * 255).round().to(torch.uint8).movedim(-3, -1).numpy()  # (S, K+1, 3, T, H, W, 3)
    big = np.repeat(np.repeat(small, scale, axis=-3), scale, axis=-2)
    if samples.masks is not None:
        for s in range(big.shape[0]):
            borders = _outline(samples.masks[s].detach().cpu().bool().numpy(), scale)  # (T, M, h, w)
            for m in range(borders.shape[1]):
                for column in (0, 1):  # masks belong to the reference branch's real and model frames
                    big[s, 0, column][borders[:, m]] = PALETTE[m % len(PALETTE)]
    return big.reshape(-1, *big.shape[2:])


def _font() -> Any:
    _, _, ImageFont = require_pillow()
    try:
        return ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def rollout_grid(samples: RolloutSamples, caption: str = "", columns: tuple[str, str, str] = COLUMNS) -> np.ndarray:
    """Draw sample rollouts as one video: a row per (episode, action branch), columns real | model | difference.

    The difference column's brightness is ``sqrt(mean_c |model - real|)`` (black: identical, white: off by the full
    range). Object masks, when the samples carry them, are outlined in the reference branch's real and model frames,
    one colour per object. A header holds ``caption`` (e.g. the step and the verdict) and the frame counter. Frames
    smaller than 64 pixels are scaled up (nearest neighbour).

    Args:
        samples: Rollouts of a few probe episodes; float frames in [0, 1] or uint8, 1, 3 or 4 (RGBA) channels.
        caption: Text drawn above the grid; newlines start new lines.
        columns: The three column titles.

    Returns:
        (T, height, width, 3) uint8 RGB frames.

    Raises:
        ValueError: If the samples' shapes do not agree.
        ModuleNotFoundError: If Pillow is not installed.

    Example:
        >>> import torch
        >>> real = torch.rand(2, 3, 5, 3, 16, 16)  # 2 episodes, 3 action branches, 5 steps
        >>> frames = rollout_grid(RolloutSamples([0, 1], real, real.flip(-1)), caption="step 100: PASS")
        >>> frames.shape, frames.dtype
        ((5, 442, 270, 3), dtype('uint8'))
    """
    Image, ImageDraw, _ = require_pillow()
    _check_samples(samples)
    _, branches, steps, _, height, width = samples.real.shape
    scale = max(1, math.ceil(MIN_CELL / min(height, width)))
    cells = _cells(samples, scale)  # (rows, 3, T, h, w, 3)
    font, line = _font(), 14
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_labels = [
        f"ep {episode}" + ("" if branches == 1 else f" k={k}" + (" (ref)" if k == 0 else ""))
        for episode in samples.episode_index
        for k in range(branches)
    ]
    label_width = int(max(measure.textlength(text, font=font) for text in row_labels)) + 6
    cell_h, cell_w = height * scale, width * scale
    caption_lines = [*caption.splitlines(), f"t 0/{steps}"]
    top = line * len(caption_lines) + line + 4
    text_w = max(measure.textlength(text, font=font) for text in caption_lines) + 8
    canvas_w = int(max(label_width + len(columns) * (cell_w + GAP), text_w))
    canvas_h = top + len(row_labels) * (cell_h + GAP)
    # even sizes keep video encoders happy
    base = Image.new("RGB", (canvas_w + canvas_w % 2, canvas_h + canvas_h % 2), (24, 24, 24))
    draw = ImageDraw.Draw(base)
    for i, text in enumerate(caption_lines[:-1]):
        draw.text((4, 2 + i * line), text, fill=(255, 255, 255), font=font)
    for c, name in enumerate(columns):
        draw.text((label_width + c * (cell_w + GAP), top - line - 2), name, fill=(200, 200, 200), font=font)
    for r, text in enumerate(row_labels):
        draw.text((2, top + r * (cell_h + GAP) + 2), text, fill=(200, 200, 200), font=font)
    frames = np.repeat(np.asarray(base)[None], steps, axis=0)
    for r in range(len(row_labels)):
        y = top + r * (cell_h + GAP)
        for c in range(len(columns)):
            x = label_width + c * (cell_w + GAP)
            frames[:, y : y + cell_h, x : x + cell_w] = cells[r, c]
    # only the frame counter changes from frame to frame: draw it on a copy of its band of the header
    counter_y = 2 + (len(caption_lines) - 1) * line
    band = (0, max(0, counter_y - line), base.width, min(top, counter_y + 2 * line))
    for t in range(steps):
        strip = base.crop(band)
        ImageDraw.Draw(strip).text((4, counter_y - band[1]), f"t {t + 1}/{steps}", "white", font)
        frames[t, band[1] : band[3]] = np.asarray(strip)
    return frames
