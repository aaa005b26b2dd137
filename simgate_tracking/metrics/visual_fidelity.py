"""Frame quality (PSNR, SSIM), reported beside the scorecard and never instead of it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from simgate_tracking.functional._checks import as_frames, check_rank, check_same_shape, compute_dtype

MAX_PSNR = 100.0
SSIM_CHUNK_BYTES = 2**17  # frame bytes per SSIM call; see VisualFidelity.update


class VisualFidelity(Metric):
    """PSNR over all frames (dB, as torchmetrics' ``PeakSignalNoiseRatio``; 100 for identical frames) and mean SSIM.

    ``update(preds, target)`` takes frames of any shape ending in (C, H, W), float in [0, 1] or uint8; every
    leading dimension (episode, branch, step) is flattened into frames. Not gated by default: frames can look
    right while the model fails as a simulator. SSIM's Gaussian window shrinks to fit frames smaller than 11 px.

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
        if preds.ndim < 4:
            check_rank(preds, 4, "preds", "(..., C, H, W)")
        check_same_shape(preds, target, "preds", "target")
        p = compute_dtype(as_frames(preds, "preds")).flatten(0, -4)
        y = compute_dtype(as_frames(target, "target")).flatten(0, -4).to(p.dtype)
        side = min(p.shape[-2:])
        pad = (min(self.kernel_size, side if side % 2 else side - 1) - 1) // 2
        # torchmetrics sizes the Gaussian window from sigma (1.5 -> 11 px), not kernel_size: scale sigma to fit
        sigma = 0.3 * pad if pad else 0.1
        # torchmetrics' SSIM holds ~70x its input at once (its Gaussian window unfolds every pixel): a few frames
        # at a time keep that, and every other temporary, to a few MiB, and run faster
        step = max(1, SSIM_CHUNK_BYTES // max(1, p[0].numel() * p.element_size()))
        for start in range(0, p.shape[0], step):
            # frames live in [0, 1]: out-of-range or non-finite model output is clipped to it, so PSNR stays finite
            p_part = torch.nan_to_num(p[start : start + step], nan=0.0).clamp_(0.0, 1.0)
            y_part = y[start : start + step]
            # channels-last frames take a faster convolution on CPU (about 1.3x), same values
            ssim = structural_similarity_index_measure(
                p_part.contiguous(memory_format=torch.channels_last),
                y_part.contiguous(memory_format=torch.channels_last),
                data_range=1.0,
                kernel_size=2 * pad + 1,
                sigma=sigma,
                reduction="none",
            )
            self.ssim_sum += torch.as_tensor(ssim).sum(dtype=torch.float64)
            self.squared_error += (p_part - y_part).square_().sum(dtype=torch.float64)
        self.num_values += p.numel()
        self.total += p.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """``{"psnr": dB, "ssim": [0, 1]}``."""
        if int(self.total) == 0:
            raise RuntimeError("VisualFidelity.compute() found no frame: call update() first")
        mse = (self.squared_error / self.num_values).clamp_min(10 ** (-MAX_PSNR / 10))
        return {"psnr": (-10 * torch.log10(mse)).float(), "ssim": (self.ssim_sum / self.total).float()}
