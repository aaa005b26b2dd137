"""Frame quality (PSNR, SSIM), reported beside the scorecard and never instead of it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simgate_tracking.functional._checks import as_frames, check_rank, check_same_shape, compute_dtype
from simgate_tracking.functional._ssim import WORKSPACE_MAPS, blur_matrix, fitted_sigma, frame_ssim
from simgate_tracking.metrics._base import SimgateMetric

MAX_PSNR = 100.0
SSIM_CHUNK_BYTES = 2**18  # frame bytes per SSIM call on CPU, its scratch in cache; see VisualFidelity.update
# elsewhere (a GPU) few large calls: every call is a few dozen kernel launches, its scratch 10x these bytes
SSIM_DEVICE_CHUNK_BYTES = 2**24


class VisualFidelity(SimgateMetric):
    """PSNR over all frames (dB, as torchmetrics' ``PeakSignalNoiseRatio``; 100 for identical frames) and mean SSIM.

    ``update(preds, target)`` takes frames of any shape ending in (C, H, W), float in [0, 1] or uint8 (half
    precision is computed in float32); every leading dimension (episode, branch, step) is flattened into frames.
    Not gated by default: frames can look right while the model fails as a simulator. SSIM is the mean over frames
    of torchmetrics' gaussian SSIM (data range 1, sigma 0.3 x the window's radius: 1.5 for 11 px), computed with a
    separable window (:func:`~simgate_tracking.functional._ssim.frame_ssim`); the window shrinks to fit frames
    smaller than ``kernel_size``.

    Args:
        kernel_size: SSIM's Gaussian window (odd).
        kwargs: Options of :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> real = torch.rand(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> metric = VisualFidelity()
        >>> metric.update(real, real)
        >>> {name: round(float(value), 2) for name, value in metric.compute().items()}
        {'psnr': 100.0, 'ssim': 1.0}
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    squared_error: Tensor
    num_values: Tensor
    ssim_sum: Tensor
    total: Tensor

    def __init__(self, kernel_size: int = 11, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"Expected argument `kernel_size` to be an odd int >= 3 but got {kernel_size!r}")
        self.kernel_size = kernel_size
        self.add_state("squared_error", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_values", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("ssim_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add frames, (..., C, H, W) each."""
        preds, target = self.in_unit_range(preds, target)
        if preds.ndim < 4:
            check_rank(preds, 4, "preds", "(..., C, H, W)")
        check_same_shape(preds, target, "preds", "target")
        p = compute_dtype(as_frames(preds, "preds")).flatten(0, -4)
        y = compute_dtype(as_frames(target, "target")).flatten(0, -4).to(p.dtype)
        height, width = p.shape[-2:]
        sigma = fitted_sigma(height, width, self.kernel_size)
        blur = (blur_matrix(height, sigma, p.dtype, p.device), blur_matrix(width, sigma, p.dtype, p.device))
        # on CPU a few frames at a time keep SSIM's scratch memory (10x its frames) to a few MiB, in cache, and
        # allocated once: fresh pages for every chunk cost more than the arithmetic; a GPU wants few launches
        budget = SSIM_CHUNK_BYTES if p.device.type == "cpu" else SSIM_DEVICE_CHUNK_BYTES
        step = max(1, budget // max(1, p[0].numel() * p.element_size()))
        workspace = p.new_empty(WORKSPACE_MAPS * min(step, p.shape[0]) * p[0].numel())
        for start in range(0, p.shape[0], step):
            # frames live in [0, 1]: out-of-range or non-finite model output is clipped to it, so PSNR stays finite
            p_part = torch.nan_to_num(p[start : start + step], nan=0.0).clamp_(0.0, 1.0)
            y_part = y[start : start + step]
            self.ssim_sum += frame_ssim(p_part, y_part, blur, workspace=workspace).sum(dtype=torch.float64)
            self.squared_error += (p_part - y_part).square_().sum(dtype=torch.float64)
        self.num_values += p.numel()
        self.total += p.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """``{"psnr": dB, "ssim": [0, 1]}``."""
        if int(self.total) == 0:
            raise RuntimeError("VisualFidelity.compute() found no frame: call update() first")
        mse = (self.squared_error / self.num_values).clamp_min(10 ** (-MAX_PSNR / 10))
        return {"psnr": (-10 * torch.log10(mse)).float(), "ssim": (self.ssim_sum / self.total).float()}
