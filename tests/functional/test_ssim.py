"""The separable SSIM gives torchmetrics' gaussian SSIM, frame by frame, at every frame size VisualFidelity meets."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torchmetrics.functional.image import structural_similarity_index_measure

from simgate_tracking.functional._ssim import blur_matrix, frame_ssim, gaussian_window_size
from simgate_tracking.metrics import VisualFidelity

SIDES = [(7, 7), (8, 8), (9, 9), (10, 10), (11, 11), (12, 12), (16, 16), (32, 32), (64, 64), (128, 128)]
NON_SQUARE = [(7, 20), (20, 7), (13, 48), (33, 17), (64, 96)]


def reference_sigma(height, width, kernel_size=11):
    """How VisualFidelity fitted torchmetrics' window to small frames: sigma 0.3 * radius of the largest odd side."""
    side = min(height, width)
    radius = (min(kernel_size, side if side % 2 else side - 1) - 1) // 2
    return 0.3 * radius if radius else 0.1


def frame_pairs(n, channels, height, width, dtype=torch.float32, seed=0):
    """Random frames and copies with noise growing from frame to frame, so SSIM spans about 0 to 1."""
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, channels, height, width, generator=g, dtype=torch.float64)
    noise = torch.linspace(0.0, 1.0, n, dtype=torch.float64).view(n, 1, 1, 1)
    preds = (target + noise * torch.randn(target.shape, generator=g, dtype=torch.float64)).clamp(0.0, 1.0)
    return preds.to(dtype), target.to(dtype)


def torchmetrics_ssim(preds, target, sigma):
    return structural_similarity_index_measure(preds, target, data_range=1.0, sigma=sigma, reduction="none")


def separable_ssim(preds, target, sigma):
    height, width = preds.shape[-2:]
    blur = (blur_matrix(height, sigma, preds.dtype), blur_matrix(width, sigma, preds.dtype))
    return frame_ssim(preds, target, blur)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("height", "width"), SIDES + NON_SQUARE)
def test_frame_ssim_equals_torchmetrics_frame_by_frame(height, width, channels):
    preds, target = frame_pairs(6, channels, height, width)
    sigma = reference_sigma(height, width)
    expected = torchmetrics_ssim(preds, target, sigma)
    assert expected.max() - expected.min() > 0.5  # the frames span a range of similarities
    torch.testing.assert_close(separable_ssim(preds, target, sigma), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("sigma", [0.1, 0.5, 1.0, 1.5, 2.5])
@pytest.mark.parametrize(("dtype", "atol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_frame_ssim_equals_torchmetrics_at_every_window(sigma, dtype, atol):
    preds, target = frame_pairs(4, 3, 40, 29, dtype=dtype)
    torch.testing.assert_close(
        separable_ssim(preds, target, sigma), torchmetrics_ssim(preds, target, sigma), atol=atol, rtol=0
    )


@pytest.mark.parametrize("precision", ["high", "medium"])
def test_frame_ssim_keeps_float32_precision_whatever_the_process_asked_for(precision):
    preds, target = frame_pairs(6, 3, 32, 32)
    expected = torchmetrics_ssim(preds, target, 1.5)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        relaxed = separable_ssim(preds, target, 1.5)
        assert torch.get_float32_matmul_precision() == precision
    finally:
        torch.set_float32_matmul_precision(previous)
    torch.testing.assert_close(relaxed, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("size", "sigma"), [(1, 0.1), (4, 0.6), (12, 1.5), (40, 2.5)])
def test_blur_matrix_is_reflect_padding_then_the_gaussian_window(size, sigma):
    x = torch.rand(3, 1, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    window = gaussian_window_size(sigma)
    radius = (window - 1) // 2
    gauss = torch.exp(-((torch.arange(window, dtype=torch.float64) - radius) / sigma).square() / 2)
    padded = F.pad(x, (radius, radius), mode="reflect") if radius else x
    expected = F.conv1d(padded, (gauss / gauss.sum()).view(1, 1, window))
    torch.testing.assert_close(x @ blur_matrix(size, sigma, torch.float64).T, expected)


@pytest.mark.parametrize(
    ("shape", "kernel_size"),
    [
        ((2, 3, 2, 3, 7, 7), 11),
        ((2, 3, 2, 1, 9, 14), 11),
        ((1, 2, 2, 3, 10, 10), 11),
        ((2, 2, 3, 3, 64, 64), 11),  # more frames than one chunk holds
        ((1, 2, 3, 3, 24, 24), 7),
        ((1, 2, 3, 1, 2, 5), 11),  # a 1-pixel window
    ],
)
def test_visual_fidelity_ssim_is_torchmetrics_mean_over_frames(shape, kernel_size):
    preds, target = frame_pairs(shape[0] * shape[1] * shape[2], *shape[3:])
    metric = VisualFidelity(kernel_size=kernel_size)
    metric.update(preds.view(shape), target.view(shape))
    expected = torchmetrics_ssim(preds, target, reference_sigma(*shape[-2:], kernel_size)).mean()
    assert float(metric.compute()["ssim"]) == pytest.approx(float(expected), abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.uint8])
def test_visual_fidelity_scores_low_precision_frames_as_their_float32_values(dtype):
    preds, target = frame_pairs(6, 3, 16, 16)
    if dtype == torch.uint8:
        preds, target = (preds * 255).round().to(dtype), (target * 255).round().to(dtype)
        as_float = preds.float() / 255, target.float() / 255
    else:
        preds, target = preds.to(dtype), target.to(dtype)
        as_float = preds.float(), target.float()
    metric = VisualFidelity()
    metric.update(preds, target)
    expected = torchmetrics_ssim(*as_float, reference_sigma(16, 16)).mean()
    assert float(metric.compute()["ssim"]) == pytest.approx(float(expected), abs=1e-5)


def test_visual_fidelity_scores_non_finite_and_out_of_range_frames_clipped_to_0_1():
    preds, target = frame_pairs(4, 3, 16, 16)
    broken = preds * 3 - 1
    broken[0, 0, :4] = float("nan")
    metric = VisualFidelity()
    metric.update(broken, target)
    clipped = torch.nan_to_num(broken, nan=0.0).clamp(0.0, 1.0)
    expected = torchmetrics_ssim(clipped, target, reference_sigma(16, 16)).mean()
    assert float(metric.compute()["ssim"]) == pytest.approx(float(expected), abs=1e-5)


def test_frame_ssim_rejects_frames_it_cannot_score():
    frames = torch.rand(2, 3, 8, 6)
    blur = (blur_matrix(8, 1.0, torch.float32), blur_matrix(6, 1.0, torch.float32))
    with pytest.raises(ValueError, match=r"Expected `preds` to have shape \(N, C, H, W\) \(4 dims\) but got shape"):
        frame_ssim(frames[0], frames[0], blur)
    with pytest.raises(ValueError, match="Expected `preds` and `target` to have the same shape"):
        frame_ssim(frames, frames[:1], blur)
    with pytest.raises(ValueError, match=r"`blur` to be matrices of shapes \(8, 8\) and \(6, 6\) for frames of 8 x 6"):
        frame_ssim(frames, frames, blur[::-1])
    with pytest.raises(ValueError, match="`workspace` to be a contiguous torch.float32 tensor on cpu of at least 2880"):
        frame_ssim(frames, frames, blur, workspace=torch.empty(2879))
    with pytest.raises(ValueError, match="but got torch.float64 on cpu of 2880"):
        frame_ssim(frames, frames, blur, workspace=torch.empty(2880, dtype=torch.float64))


def test_frame_ssim_reuses_one_workspace_for_chunks_of_any_size():
    preds, target = frame_pairs(7, 3, 12, 12)
    blur = (blur_matrix(12, 1.5, torch.float32), blur_matrix(12, 1.5, torch.float32))
    workspace = torch.full((10 * 4 * 3 * 12 * 12 + 5,), float("nan"))  # stale values must not leak into scores
    chunks = [frame_ssim(preds[i : i + 4], target[i : i + 4], blur, workspace=workspace) for i in (0, 4)]
    torch.testing.assert_close(torch.cat(chunks), torchmetrics_ssim(preds, target, 1.5), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("size", "sigma", "message"),
    [
        (8, 0.0, "`sigma` to be a positive float but got 0.0"),
        (8, -1.0, "`sigma` to be a positive float but got -1.0"),
        (5, 1.5, "frame side larger than the Gaussian window's radius 5 \\(sigma=1.5\\) but got 5"),
    ],
)
def test_blur_matrix_rejects_a_window_that_does_not_fit(size, sigma, message):
    with pytest.raises(ValueError, match=message):
        blur_matrix(size, sigma, torch.float32)
