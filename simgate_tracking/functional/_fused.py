"""Every axis's per-episode sums from one compiled pass over the rollouts: the scorecard's update on CPU.

The tensor path of each axis reads the rollouts again and writes temporaries as large as a chunk of them; on CPU
that memory traffic is most of an update's time. :func:`rollout_sums` hands the rollouts to a numba kernel that
reads every value once, in cache-sized blocks of pixels, and returns the same sums the tensor path reduces the
rollouts to; the axes then finish their scores from those sums with the same code as the tensor path.

Where numba is not installed, or the kernel cannot be compiled here, :func:`rollout_sums` returns None and the
scorecard takes the tensor path.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simgate_tracking.functional._distances import distances_from_gram
from simgate_tracking.functional.object_persistence import _dilate

BLOCK_PIXELS = 1024  # pixels of a frame taken at once: a block of every branch, step and channel stays in cache
THREAD_MIN_VALUES = 2**18  # below this many values per thread, one thread does the whole call
KERNEL_MIN_VALUES = 2**22  # frame values in one update (every frame input) from which the kernel repays its load
DISABLE_VARIABLE = "SIMGATE_CPU_KERNEL"  # "0": every scorecard in the process takes the tensor path

_lock = threading.Lock()
_kernel: dict[str, Any] = {}  # "fn": the compiled kernel or None, once looked up
_pool: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child must not reuse its parent's threads


@dataclass(frozen=True)
class RolloutSums:
    """Per-episode sums of one bundle of rollouts, as the tensor path of each axis computes them.

    Attributes:
        distances: (B, 2(K+1), 2(K+1)) squared distances between whole branches, as
            :func:`~simgate_tracking.functional._distances.branch_distances` returns them; None without branches.
        temporal: (B, 3) on the reference branch: |dP|^2, |dY|^2 and |dP - dY|^2; None when not asked.
        reset: (B, 2): |P1 - P2|^2 and |Y - mean_t Y|^2; None without a second pass.
        inside: (B, T, N, 2 + 2C) sums under each object's mask: squared error, area, real channels, their squares.
        around: (B, T, N, 2 + 2C) the same under each mask's ring (its squared error and squares left 0).
        finite: (B,) the reference branch's squared error is finite; taken with masks only (all True without).
    """

    distances: Tensor | None
    temporal: Tensor | None
    reset: Tensor | None
    inside: Tensor | None
    around: Tensor | None
    finite: Tensor


def compiled_kernel() -> Any:
    """The numba kernel, or None: numba cannot be imported, its JIT is disabled, or ``SIMGATE_CPU_KERNEL=0``."""
    if os.environ.get(DISABLE_VARIABLE, "").strip() == "0":
        return None
    with _lock:
        if "fn" not in _kernel:
            _kernel["fn"] = _load_kernel()
        return _kernel["fn"]


def _load_kernel() -> Any:
    try:
        kernel = importlib.import_module("simgate_tracking.functional._fused_kernel").fused_sums
        # with NUMBA_DISABLE_JIT the kernel would run as plain Python, far slower than tensor operations
        if importlib.import_module("numba").config.DISABLE_JIT:
            return None
    except Exception:  # noqa: BLE001 - a missing or broken numba only means the tensor path
        return None
    try:
        kernel.enable_caching()  # compiled once per install, then loaded from numba's on-disk cache
    except Exception as err:  # noqa: BLE001 - without a writable cache directory it still runs, compiled per process
        message = (
            f"The compiled CPU kernel cannot be cached here ({err}); every process compiles it (about 2 s). "
            "Set NUMBA_CACHE_DIR to a writable directory to keep it."
        )
        warnings.warn(message, RuntimeWarning, stacklevel=4)
    return kernel


def kernel_takes(*frames: Tensor | None) -> bool:
    """True if the kernel is there and should take these frames: CPU frames, enough values to repay its load.

    Frame dtypes are uint8, float32 and half precision. Loading the kernel costs a process about 0.4 s once
    (importing numba, setting up LLVM, reading the compiled code from its cache) and saves about 1 ms per million
    frame values scored on 2 cores. Updates of at least :data:`KERNEL_MIN_VALUES` save 4 ms or more each, which
    a run's hundreds of gate updates repay; smaller ones (a toy run of a few checks would not) take the tensor
    path.
    """
    given = [x for x in frames if x is not None]
    if not all(isinstance(x, Tensor) for x in given):
        return False
    frame_dtypes = (torch.float32, torch.uint8, torch.float16, torch.bfloat16)
    return (
        sum(x.numel() for x in given) >= KERNEL_MIN_VALUES
        and all(x.device.type == "cpu" and x.dtype in frame_dtypes for x in given)
        and compiled_kernel() is not None  # last: it loads numba, worth it only for an update this size
    )


def rollout_sums(
    model: Tensor | tuple[Tensor, Tensor],
    target: Tensor,
    second: Tensor | None = None,
    masks: Tensor | None = None,
    ring_width: int = 1,
    temporal: bool = True,
) -> RolloutSums | None:
    """Every sum the scorecard needs from one bundle, in one pass; None where the kernel is unavailable.

    Shapes are the caller's to check; frames must be float32 on CPU. No frame is copied unless a tensor's values
    are laid out other than as whole contiguous branches.

    Args:
        model: (B, K+1, T, C, H, W) every branch, reference first; or the pair (reference (B, T, C, H, W),
            counterfactual (B, K, T, C, H, W)) as a world model returns them; or the reference branch alone,
            (B, T, C, H, W), for no branch sums.
        target: Real futures, (B, K+1, T, C, H, W), or (B, T, C, H, W) with the reference branch alone.
        second: (B, T, C, H, W) a second pass of the reference branch: reset sums.
        masks: (B, T, N, H, W) bool object masks of the reference branch: region sums.
        ring_width: Width in pixels of the ring around each mask.
        temporal: Take the temporal consistency sums.
    """
    fn = compiled_kernel()
    if fn is None:
        return None
    if isinstance(model, tuple):
        reference, branches, shift = _branch_array(model[0].unsqueeze(1)), _branch_array(model[1]), 0
    elif model.ndim == 6:
        reference = branches = _branch_array(model)
        shift = 1  # counterfactual branch k is the model's branch k
    else:
        # the reference branch alone is a bundle of one branch: its Gram sums cost next to nothing
        reference = branches = _branch_array(model.unsqueeze(1))
        shift = 0
    with_branches = target.ndim == 6
    real = _branch_array(target if with_branches else target.unsqueeze(1))
    b, k1 = len(real), target.shape[1] if with_branches else 1
    t, c, h, w = target.shape[-4:]
    pixels = h * w
    n = 0 if masks is None else masks.shape[2]
    blocks = -(-pixels // BLOCK_PIXELS)
    no_masks = np.zeros((b, t, 0, 1), np.bool_)
    gram = np.zeros((b, blocks, 2 * k1, 2 * k1))
    changes = np.zeros((b, blocks, 3))
    drift = np.zeros((b, blocks, 2))
    regions = np.zeros((b, blocks, t, n, 2, 2 + 2 * c))
    error = np.zeros((b, blocks))
    arguments: tuple[Any, ...] = (
        reference,
        branches,
        real,
        np.zeros((1, 1, 1, 1), np.float32) if second is None else _array(second, (b, t, c, pixels)),
        no_masks if masks is None else _array(masks, (b, t, n, pixels)),
        no_masks if masks is None else _array(_dilate(masks, ring_width), (b, t, n, pixels)),
        k1,
        shift,
        BLOCK_PIXELS,
        temporal,
        second is not None,
    )
    outputs = (gram, changes, drift, regions, error)
    items = b * blocks
    threads = max(1, min(torch.get_num_threads(), items, target.numel() // THREAD_MIN_VALUES))

    def run(first: int, last: int) -> None:
        fn(*arguments, first, last, *outputs)

    try:
        if threads == 1:
            run(0, items)
        else:
            # the kernel releases the GIL: each thread adds its own items, so no two write the same outputs
            cuts = np.linspace(0, items, threads + 1).astype(np.int64).tolist()
            pool = _threads()
            for job in [pool.submit(run, lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]:
                job.result()
    except Exception as err:  # noqa: BLE001 - a kernel numba cannot compile here falls back to the tensor path
        with _lock:
            _kernel["fn"] = None
        message = f"The compiled CPU kernel failed ({type(err).__name__}: {err}); scoring with tensor operations"
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return None

    # blocks add up in float64; the sums then take the frames' dtype, as the tensor path's do, so that a finite
    # rollout whose energies overflow float32 is flagged non-finite on both paths
    def total(x: np.ndarray) -> Tensor:
        return torch.from_numpy(x.sum(axis=1)).to(target.dtype)

    upper = torch.from_numpy(gram.sum(axis=1))  # distances come out in the frames' dtype, as on the tensor path
    regions_total = total(regions)
    return RolloutSums(
        distances=distances_from_gram(upper.triu() + upper.triu(1).transpose(1, 2), target.dtype) if k1 > 1 else None,
        temporal=total(changes) if temporal else None,
        reset=None if second is None else total(drift),
        inside=None if masks is None else regions_total[..., 0, :],
        around=None if masks is None else regions_total[..., 1, :],
        finite=total(error).isfinite(),
    )


def _branch_array(x: Tensor) -> np.ndarray:
    """(B, R, T, C, H, W) frames as a C-contiguous (B, R', T, C, H*W) numpy array whose first R branches are ``x``'s.

    A contiguous tensor is a view. So is a view of the leading branches of a contiguous batch, such as
    ``targets[:, :1]`` (R' is then the batch's branch count): its branches are whole contiguous blocks a fixed
    stride apart. Anything else is copied.
    """
    x = x.detach()
    b, r, t, c, h, w = x.shape
    if not x.is_contiguous():
        branch = t * c * h * w
        whole = (r * branch, branch, c * h * w, h * w, w, 1)  # the strides of x if it were contiguous
        spread = x.stride(0) // branch if b > 1 else r
        end = x.storage_offset() + (b - 1) * x.stride(0) + spread * branch
        if (
            x.stride()[1:] == whole[1:]
            and x.stride(0) % branch == 0
            and spread >= r
            and end * x.element_size() <= x.untyped_storage().nbytes()
        ):
            x = torch.as_strided(x, (b, spread, t, c, h, w), (spread * branch, *whole[1:]))
        else:
            x = x.contiguous()
    return x.reshape(b, x.shape[1], t, c, h * w).numpy()


def _array(x: Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous numpy view of ``x`` in ``shape`` (a copy only when ``x`` is not contiguous)."""
    return x.detach().contiguous().view(shape).numpy()


def _after_fork_in_child() -> None:
    # a fork while another thread held the lock (loading numba) would leave it locked in the child for good
    global _lock
    _lock = threading.Lock()
    _pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _threads() -> ThreadPoolExecutor:
    pid = os.getpid()
    with _lock:
        if pid not in _pool:
            _pool.clear()
            _pool[pid] = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="simgate-kernel")
        return _pool[pid]
