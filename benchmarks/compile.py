"""What the compiled CPU kernel costs once: its compilation on first use, then its load from the on-disk cache."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

# one small scorecard update in a fresh interpreter, timed around the update alone (imports excluded)
_FIRST_UPDATE = """
import time, torch
from simgate_tracking.functional import _fused
from simgate_tracking.metrics import SimulatorScorecard
_fused.KERNEL_MIN_VALUES = 0  # a small update, so that only the kernel's one-time cost shows
real = torch.rand(2, 3, 4, 3, 16, 16)
masks = torch.zeros(2, 4, 1, 16, 16, dtype=torch.bool)
masks[..., 4:8, 4:8] = True
start = time.perf_counter()
SimulatorScorecard().update(real, real, second=real[:, 0], masks=masks)
print(time.perf_counter() - start)
"""


@dataclass(frozen=True)
class KernelCost:
    """Seconds of a fresh process's first scorecard update: compiling the kernel, and loading it once cached."""

    compile_seconds: float
    cached_seconds: float


def kernel_cost() -> KernelCost:
    """Time the first update of two fresh interpreters sharing an empty kernel cache: the first compiles."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", _FIRST_UPDATE], env=env, check=True, capture_output=True, text=True
                ).stdout
            )
            for _ in range(2)
        ]
    return KernelCost(compile_seconds=runs[0], cached_seconds=runs[1])
