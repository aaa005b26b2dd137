"""Frames and masks from an environment, resized to the probe set's size the same way every time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor


def check_size(size: Any) -> tuple[int, int]:
    """Return ``size`` as an ``(H, W)`` tuple of positive ints.

    Raises:
        ValueError: If ``size`` is not two positive ints.

    Example:
        >>> check_size([32, 48])
        (32, 48)
    """
    ok = isinstance(size, tuple | list) and len(size) == 2
    ok = ok and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    if not ok:
        raise ValueError(f"Expected argument `size` to be (H, W), two positive ints, but got {size!r}")
    return int(size[0]), int(size[1])


def resize_frame(image: Any, size: tuple[int, int]) -> Tensor:
    """An (h, w, 3) uint8 RGB image as a (3, H, W) uint8 tensor, resized with antialiased bilinear interpolation.

    Deterministic on the CPU, so a frame rendered twice from the same state resizes to the same bytes. An alpha
    channel is dropped.

    Args:
        image: An (h, w, 3) or (h, w, 4) uint8 array, what ``env.render()`` returns with ``render_mode="rgb_array"``.
        size: The target ``(H, W)``.

    Raises:
        ValueError: If ``image`` is not an (h, w, 3 or 4) uint8 array.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((8, 8, 3), dtype=np.uint8)
        >>> image[:4] = 255
        >>> resize_frame(image, (2, 2))[0]
        tensor([[219, 219],
                [ 36,  36]], dtype=torch.uint8)
    """
    if image is None:
        raise ValueError(
            "Expected env.render() to return an (h, w, 3) uint8 image but got None: make the environment with "
            'render_mode="rgb_array"'
        )
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise ValueError(
            f"Expected env.render() to return an (h, w, 3) uint8 image but got shape {array.shape}, "
            f'dtype {array.dtype}: make the environment with render_mode="rgb_array"'
        )
    frame = torch.from_numpy(np.ascontiguousarray(array[:, :, :3])).permute(2, 0, 1)
    if tuple(frame.shape[1:]) == size:
        return frame.clone()
    resized = F.interpolate(frame[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    # numpy rounds half to even like torch, without torch's thread-pool overhead on small frames
    return torch.from_numpy(np.rint(resized[0].numpy()).clip(0, 255).astype(np.uint8))


def resize_mask(mask: Any, size: tuple[int, int]) -> Tensor:
    """An (h, w) bool mask at any resolution as an (H, W) bool tensor, resized by nearest pixel centres.

    Example:
        >>> resize_mask(torch.tensor([[True, False], [False, False]]), (4, 4)).int()
        tensor([[1, 1, 0, 0],
                [1, 1, 0, 0],
                [0, 0, 0, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
    """
    tensor = torch.as_tensor(np.asarray(mask.cpu() if isinstance(mask, Tensor) else mask, dtype=bool))
    if tensor.ndim != 2:
        raise ValueError(f"Expected an object mask of shape (h, w) but got shape {tuple(tensor.shape)}")
    if tuple(tensor.shape) == size:
        return tensor.clone()
    resized = F.interpolate(tensor[None, None].float(), size=size, mode="nearest-exact")
    return resized[0, 0] > 0.5
