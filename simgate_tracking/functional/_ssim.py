"""SSIM per frame with a separable Gaussian window: torchmetrics' gaussian SSIM values at a fraction of its cost."""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_rank, check_same_shape
from simgate_tracking.functional._precision import full_precision_matmul

K1 = 0.01
K2 = 0.03
WORKSPACE_MAPS = 10  # five blurred maps and their half-blurred copies, each the size of the frames


def gaussian_window_size(sigma: float) -> int:
    """Side of the Gaussian window for ``sigma``: ``2 * int(3.5 * sigma + 0.5) + 1`` px, as torchmetrics sizes it.

    torchmetrics' gaussian SSIM ignores its ``kernel_size`` argument and derives the window from ``sigma``.

    Example:
        >>> gaussian_window_size(1.5), gaussian_window_size(0.9), gaussian_window_size(0.1)
        (11, 7, 1)
    """
    return int(3.5 * sigma + 0.5) * 2 + 1


def fitted_sigma(height: int, width: int, kernel_size: int) -> float:
    """Sigma whose window is ``kernel_size`` px, shrunk to the largest odd side that fits a ``height x width`` frame.

    ``0.3 * radius`` gives a window of ``2 * radius + 1`` px for radii up to 9 (sigma 1.5 for the usual 11 px).

    Example:
        >>> fitted_sigma(64, 64, 11), gaussian_window_size(fitted_sigma(64, 64, 11))
        (1.5, 11)
        >>> gaussian_window_size(fitted_sigma(7, 9, 11)), gaussian_window_size(fitted_sigma(2, 2, 11))
        (7, 1)
    """
    side = min(height, width)
    radius = (min(kernel_size, side if side % 2 else side - 1) - 1) // 2
    return 0.3 * radius if radius else 0.1


def blur_matrix(size: int, sigma: float, dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    r"""The (size, size) matrix :math:`G` of the 1-D Gaussian blur along one side of a frame.

    :math:`(G x)_i = \sum_t g_t \, x_{r(i + t - \rho)}` with :math:`g` the normalised Gaussian of
    :func:`gaussian_window_size` taps, :math:`\rho` its radius and :math:`r` the reflection at the borders: the
    reflect padding and valid correlation of torchmetrics' SSIM folded into one matrix, so that a frame
    :math:`X` (H, W) blurs as :math:`G_H X G_W^T`.

    Args:
        size: The frame side (H or W) in pixels.
        sigma: The Gaussian's standard deviation in pixels.
        dtype: Floating dtype of the matrix, the frames' dtype.
        device: Device of the matrix, the frames' device.

    Raises:
        ValueError: If ``sigma`` is not positive or the window's radius does not fit inside ``size`` pixels.

    Example:
        >>> blur_matrix(4, 0.6, torch.float32).round(decimals=3)  # 5 taps: the reflected ones add up at the borders
        tensor([[0.6640, 0.3310, 0.0050, 0.0000],
                [0.1660, 0.6660, 0.1660, 0.0030],
                [0.0030, 0.1660, 0.6660, 0.1660],
                [0.0000, 0.0050, 0.3310, 0.6640]])
    """
    if not sigma > 0:
        raise ValueError(f"Expected argument `sigma` to be a positive float but got {sigma!r}")
    window = gaussian_window_size(sigma)
    radius = (window - 1) // 2
    if radius >= size:
        raise ValueError(
            f"Expected a frame side larger than the Gaussian window's radius {radius} (sigma={sigma}) but got {size}"
        )
    dist = torch.arange((1 - window) / 2, (1 + window) / 2, 1, dtype=dtype, device=device)
    gauss = torch.exp(-torch.pow(dist / sigma, 2) / 2)
    gauss = gauss / gauss.sum()
    taps = (torch.arange(size, device=device).unsqueeze(1) + torch.arange(window, device=device) - radius).abs()
    taps = torch.where(taps >= size, 2 * (size - 1) - taps, taps)
    return torch.zeros(size, size, dtype=dtype, device=device).scatter_add_(1, taps, gauss.expand(size, window))


def _check_frames(preds: Tensor, target: Tensor, blur: tuple[Tensor, Tensor], workspace: Tensor | None) -> None:
    """Raise ``ValueError`` unless :func:`frame_ssim` can score these frames with this window and workspace."""
    check_rank(preds, 4, "preds", "(N, C, H, W)")
    check_same_shape(preds, target, "preds", "target")
    height, width = preds.shape[-2:]
    rows, cols = blur
    if rows.shape != (height, height) or cols.shape != (width, width):
        raise ValueError(
            f"Expected `blur` to be matrices of shapes {(height, height)} and {(width, width)} for frames of"
            f" {height} x {width} px but got {tuple(rows.shape)} and {tuple(cols.shape)}"
        )
    if workspace is None:
        return
    needed = WORKSPACE_MAPS * preds.numel()
    fits = workspace.dtype == preds.dtype and workspace.device == preds.device and workspace.is_contiguous()
    if not fits or workspace.numel() < needed:
        raise ValueError(
            f"Expected `workspace` to be a contiguous {preds.dtype} tensor on {preds.device} of at least {needed}"
            f" elements but got {workspace.dtype} on {workspace.device} of {workspace.numel()}"
            f" (contiguous: {workspace.is_contiguous()})"
        )


@torch.no_grad()
def frame_ssim(
    preds: Tensor,
    target: Tensor,
    blur: tuple[Tensor, Tensor],
    data_range: float = 1.0,
    workspace: Tensor | None = None,
) -> Tensor:
    r"""SSIM of each frame: the mean over channels and pixels of the local similarity map.

    .. math::
        \mathrm{SSIM} = \frac{(2\mu_p\mu_y + C_1)(2\sigma_{py} + C_2)}{(\mu_p^2 + \mu_y^2 + C_1)
        (\sigma_p^2 + \sigma_y^2 + C_2)}, \quad C_1 = (0.01 L)^2, \; C_2 = (0.03 L)^2

    with local means, variances (clamped at 0) and covariance taken under the Gaussian window ``blur`` and ``L`` the
    data range. Equals torchmetrics' ``structural_similarity_index_measure(..., reduction="none")`` with the same
    ``sigma`` to float rounding: the 2-D window is applied as two 1-D blurs, each one matrix product, in full float32
    precision whatever ``torch.set_float32_matmul_precision`` says. Not differentiable.

    Args:
        preds: Model frames (N, C, H, W), floating point.
        target: Real frames, same shape and dtype.
        blur: ``(blur_matrix(H, ...), blur_matrix(W, ...))`` in the frames' dtype and device.
        data_range: ``max - min`` of a pixel's values.
        workspace: Scratch memory of at least ``10 * preds.numel()`` elements in the frames' dtype, overwritten. A
            caller scoring many chunks passes the same one each time: fresh buffers of a few MiB per chunk cost
            more in page faults on CPU than the arithmetic. ``None`` allocates one.

    Raises:
        ValueError: If the frames are not (N, C, H, W) of the same shape, or ``blur`` or ``workspace`` does not
            fit them.

    Example:
        >>> real = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> blur = (blur_matrix(16, 1.5, torch.float32), blur_matrix(16, 1.5, torch.float32))
        >>> frame_ssim(real, real, blur)
        tensor([1., 1.])
        >>> frame_ssim(real * 0.75, real, blur)
        tensor([0.9219, 0.9219])
    """
    _check_frames(preds, target, blur, workspace)
    rows, cols = blur
    size = preds.numel()
    space = preds.new_empty(WORKSPACE_MAPS * size) if workspace is None else workspace.view(-1)
    maps = space[: 5 * size].view(5, *preds.shape)
    half = space[5 * size : 10 * size].view(5, *preds.shape)
    maps[0].copy_(preds)
    maps[1].copy_(target)
    torch.mul(preds, preds, out=maps[2])
    torch.mul(target, target, out=maps[3])
    torch.mul(preds, target, out=maps[4])
    # variances are differences of blurred squares: TF32 or bfloat16 products would swamp them
    with full_precision_matmul():
        torch.matmul(maps, cols.T, out=half)
        torch.matmul(rows, half, out=maps)
    mu_p, mu_y, mean_pp, mean_yy, mean_py = maps.unbind(0)
    # in place from here on: every blurred map is read once and the half-blurred ones are no longer needed
    mu_pp = torch.mul(mu_p, mu_p, out=half[0])
    mu_yy = torch.mul(mu_y, mu_y, out=half[1])
    mu_py = mu_p.mul_(mu_y)
    var_p = mean_pp.sub_(mu_pp).clamp_(min=0.0)
    var_y = mean_yy.sub_(mu_yy).clamp_(min=0.0)
    cov = mean_py.sub_(mu_py)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    upper = mu_py.mul_(2).add_(c1).mul_(cov.mul_(2).add_(c2))
    lower = mu_pp.add_(mu_yy).add_(c1).mul_(var_p.add_(var_y).add_(c2))
    return upper.div_(lower).flatten(1).mean(-1)
