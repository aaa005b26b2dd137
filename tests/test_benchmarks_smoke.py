"""The benchmark's one command runs end to end on tiny sizes, so it never rots (no timing is asserted here)."""

import re
import subprocess
import sys
from pathlib import Path

from simgate_tracking.functional._fused import compiled_kernel

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_command_prints_every_case_and_target():
    command = [sys.executable, "-m", "benchmarks", "--size", "2x2x4x3x16x16", "--device", "cpu", "--threads", "1"]
    command += [
        "--repeats",
        "1",
        "--slow-repeats",
        "1",
        "--batch-size",
        "1",
        "--demo-epochs",
        "1",
        "--demo-windows",
        "16",
    ]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    # exit status 1 only means a speed target failed, which tiny sizes may do
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    out = proc.stdout
    cases = ("floor: squared-difference sum", "scorecard: 5 axes + delta-PSNR", "tensor path", "naive per-frame loop")
    for case in cases:
        assert case in out
    for axis in ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility"):
        assert re.search(rf"^{axis}\s+\d", out, flags=re.M), axis
    gap = float(re.search(r"largest score difference (\S+)", out).group(1))
    assert gap < 1e-4  # the naive loop and the scorecard compute the same scores
    assert re.search(r"scorecard state bytes, 2 vs 32 episodes\s+(\d+) B vs \1 B\s+equal\s+PASS", out)
    for target in ("5-axis update / floor", "naive loop / 5-axis update", "5-axis update / SSIM", "peak memory"):
        assert target in out
    # a stochastic world: the scorecard against R = 4 real takes, the one-take update beside it, state O(1)
    assert "## R = 4 real takes: 2x4x2x4x3x16x16" in out
    for case in ("R = 4 takes: 5 axes", "one take (take 0): 5 axes", "R takes: the same without masks"):
        assert re.search(rf"^{re.escape(case)}.*\s[\d.]+\s+[\d.]+\s+[\d.]+$", out, flags=re.M), case
    takes = r"R = 4 takes update / floor \[2x2x4x3x16x16 cpu float32\]\s+[\d.]+x \([\d.]+ ms, floor [\d.]+ ms\)"
    assert re.search(rf"{takes}\s+<= 3x\s+(PASS|FAIL)$", out, flags=re.M)
    assert re.search(r"one-take update \(take 0\) / floor .*\s[\d.]+x \([\d.]+ ms\)\s+for scale", out)
    assert re.search(r"scorecard state bytes, R = 4 takes, 2 vs 32 episodes\s+(\d+) B vs \1 B\s+equal\s+PASS", out)
    share = re.search(r"gate share of demo training time\s+([\d.]+)% \(1 checks", out)
    assert share and 0 < float(share.group(1)) < 100
    assert "rollouts and scorecard" in out
    if compiled_kernel() is None:
        assert "CPU kernel: not used here" in out
    else:
        kernel = re.search(r"CPU kernel, once per process: ([\d.]+) s .* ([\d.]+) s once cached", out)
        assert kernel and float(kernel.group(1)) > float(kernel.group(2)) > 0  # compiling costs more than loading
