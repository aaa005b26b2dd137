"""The scorecard's sums in one pass over the rollouts, compiled with numba: the CPU path of the scorecard's update.

Every axis of the scorecard reduces the rollouts to a few sums per episode (Gram matrices of the branches, change
energies, masked region sums, drift and scale). Eager tensor code takes them in separate passes, each reading the
rollouts again and writing temporaries the size of a chunk of them; this kernel reads every input value once, in
blocks of pixels that stay in cache, and takes every sum from the block. The maths that turns sums into scores is
shared with the tensor path (see :mod:`simgate_tracking.functional._fused`).

Only numpy arrays come in: the caller checks shapes, dtypes (float32 frames, bool masks) and contiguity.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# reassociation lets LLVM vectorise the float32 sums; no "nnan"/"ninf": NaN and Inf must reach the sums
_FASTMATH = {"reassoc", "contract"}


@njit(nogil=True, fastmath=_FASTMATH)  # cached on disk by the caller: see _fused.compiled_kernel
def fused_sums(  # noqa: PLR0912, PLR0913, PLR0915, C901
    reference: np.ndarray,
    branches: np.ndarray,
    target: np.ndarray,
    second: np.ndarray,
    masks: np.ndarray,
    dilated: np.ndarray,
    n_branches: int,
    shift: int,
    width: int,
    do_temporal: bool,
    do_reset: bool,
    first_item: int,
    last_item: int,
    gram: np.ndarray,
    temporal: np.ndarray,
    reset: np.ndarray,
    regions: np.ndarray,
    error_total: np.ndarray,
) -> None:
    """Add the sums of items ``first_item .. last_item - 1`` (item = episode x block of ``width`` pixels).

    Args:
        reference: (B, *, T, C, P) float32: the model's reference branch is ``reference[:, 0]``.
        branches: (B, *, T, C, P) float32: counterfactual branch k (1 .. K) is ``branches[:, k - 1 + shift]``.
        target: (B, *, T, C, P) float32: reality's branch k is ``target[:, k]``.
        second: (B, T, C, P) float32, the second pass of the reference branch, read if ``do_reset``.
        masks: (B, T, N, P) bool object masks of the reference branch (N may be 0).
        dilated: (B, T, N, P) bool, each mask grown by the ring's width.
        n_branches: K + 1, the branches scored (1: the reference alone).
        shift: Where counterfactual branch 1 sits in ``branches`` (1 when ``branches`` holds every branch).
        width: Pixels per block.
        do_temporal: Take the temporal sums.
        do_reset: Take the reset sums.
        first_item: First item (episode x block, episode-major) this call adds.
        last_item: One past the last item.
        gram: (B, blocks, 2(K+1), 2(K+1)) float64 out, upper triangle: Gram matrix of the rows
            [P_0 .. P_K, Y_0 .. Y_K] - Y_0.
        temporal: (B, blocks, 3) float64 out: |dP|^2, |dY|^2, |dP - dY|^2 on the reference branch.
        reset: (B, blocks, 2) float64 out: |P_0 - second|^2, |Y_0 - mean_t Y_0|^2.
        regions: (B, blocks, T, N, 2, 2 + 2C) float64 out: under the mask [squared error, area, colour, colour^2]
            and under the ring (dilation less mask) [0, area, colour, 0].
        error_total: (B, blocks) float64 out: the reference branch's squared error over every value (with masks).
    """
    n_steps, n_channels, n_pixels = target.shape[2], target.shape[3], target.shape[4]
    n_objects = masks.shape[2]
    n_blocks = (n_pixels + width - 1) // width
    n_rows = 2 * n_branches
    rows = np.zeros((n_rows, width + 48), np.float32)  # padded: rows 4 KiB apart would share cache sets
    error = np.zeros(width, np.float32)
    mean = np.zeros((n_channels, width + 48), np.float32)
    for item in range(first_item, last_item):
        b = item // n_blocks
        j = item - b * n_blocks
        lo = j * width
        w = min(width, n_pixels - lo)
        hi = lo + w
        if do_reset:
            mean[:, :w] = 0.0
            for t in range(n_steps):
                for c in range(n_channels):
                    real = target[b, 0, t, c, lo:hi]
                    average = mean[c]
                    for i in range(w):
                        average[i] += real[i]
            inverse = np.float32(1.0 / n_steps)
            for c in range(n_channels):
                average = mean[c]
                for i in range(w):
                    average[i] *= inverse
        for t in range(n_steps):
            for c in range(n_channels):
                real = target[b, 0, t, c, lo:hi]
                model = reference[b, 0, t, c, lo:hi]
                # the reference branch's error, relative to reality's reference branch: Gram row 0
                row = rows[0]
                for i in range(w):
                    row[i] = model[i] - real[i]
                if n_objects > 0:
                    if c == 0:
                        for i in range(w):
                            error[i] = row[i] * row[i]
                    else:
                        for i in range(w):
                            error[i] += row[i] * row[i]
                if n_branches > 1:
                    for k in range(1, n_branches):
                        other = branches[b, k - 1 + shift, t, c, lo:hi]
                        other_real = target[b, k, t, c, lo:hi]
                        model_row, real_row = rows[k], rows[n_branches + k]
                        for i in range(w):
                            model_row[i] = other[i] - real[i]
                            real_row[i] = other_real[i] - real[i]
                    # row n_branches (Y_0 - Y_0) is zero: its entries stay 0
                    for r in range(n_rows):
                        if r == n_branches:
                            continue
                        left = rows[r]
                        for s in range(r, n_rows):
                            if s == n_branches:
                                continue
                            right = rows[s]
                            acc = np.float32(0.0)
                            for i in range(w):
                                acc += left[i] * right[i]
                            gram[b, j, r, s] += acc
                if do_temporal and t > 0:
                    before = reference[b, 0, t - 1, c, lo:hi]
                    real_before = target[b, 0, t - 1, c, lo:hi]
                    model_change = np.float32(0.0)
                    real_change = np.float32(0.0)
                    gap = np.float32(0.0)
                    for i in range(w):
                        dp = model[i] - before[i]
                        dy = real[i] - real_before[i]
                        model_change += dp * dp
                        real_change += dy * dy
                        gap += (dp - dy) * (dp - dy)
                    temporal[b, j, 0] += model_change
                    temporal[b, j, 1] += real_change
                    temporal[b, j, 2] += gap
                if do_reset:
                    again = second[b, t, c, lo:hi]
                    average = mean[c]
                    drift = np.float32(0.0)
                    scale = np.float32(0.0)
                    for i in range(w):
                        d = model[i] - again[i]
                        v = real[i] - average[i]
                        drift += d * d
                        scale += v * v
                    reset[b, j, 0] += drift
                    reset[b, j, 1] += scale
            if n_objects > 0:
                total = np.float32(0.0)
                for i in range(w):
                    total += error[i]
                error_total[b, j] += total
            for n in range(n_objects):
                inside = masks[b, t, n, lo:hi]
                grown = dilated[b, t, n, lo:hi]
                shown = False
                for i in range(w):
                    if grown[i]:
                        shown = True
                        break
                if not shown:
                    continue
                squared = np.float32(0.0)
                area = np.float32(0.0)
                ring_area = np.float32(0.0)
                for i in range(w):
                    m = inside[i]
                    squared += error[i] if m else np.float32(0.0)
                    area += np.float32(1.0) if m else np.float32(0.0)
                    ring_area += np.float32(1.0) if grown[i] and not m else np.float32(0.0)
                out = regions[b, j, t, n]
                out[0, 0] += squared
                out[0, 1] += area
                out[1, 1] += ring_area
                for c in range(n_channels):
                    real = target[b, 0, t, c, lo:hi]
                    colour = np.float32(0.0)
                    colour_sq = np.float32(0.0)
                    ring_colour = np.float32(0.0)
                    for i in range(w):
                        v = real[i]
                        m = inside[i]
                        colour += v if m else np.float32(0.0)
                        colour_sq += v * v if m else np.float32(0.0)
                        ring_colour += v if grown[i] and not m else np.float32(0.0)
                    out[0, 2 + c] += colour
                    out[0, 2 + n_channels + c] += colour_sq
                    out[1, 2 + c] += ring_colour
