"""Matrix products that keep full float32 precision whatever the process-wide setting says."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def full_precision_matmul() -> Iterator[None]:
    """Inside this block, float32 matrix products round as float32.

    Training scripts often call ``torch.set_float32_matmul_precision("high")`` or ``"medium"``, which lets cuBLAS
    use TF32 and oneDNN bfloat16 inside float32 products: fine for a network, not for sums of squares that are
    subtracted from each other. The setting is restored on exit.
    """
    previous = torch.get_float32_matmul_precision()
    if previous == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)
