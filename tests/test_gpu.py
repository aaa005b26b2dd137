"""The GPU path: no host sync inside any update, half-precision inputs, and the CUDA benchmark.

The CUDA tests run where a GPU is present; the CPU tests check the same promises in a form a CPU can see.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.profiler import profile

from simgate_tracking.metrics import SimulatorScorecard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package sits beside the tests, outside the installed package
from benchmarks.bundle import Size, make_bundle, make_takes_bundle  # noqa: E402
from benchmarks.speed import axis_cases  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
HALF = ("float16", "bfloat16")
# aten ops that wait for the device: reading a value back, or a shape that depends on values
SYNC_OPS = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::is_nonzero", "aten::equal"}


def _scorecard_update(card, bundle):
    bundle.feed(card)


def _updates(bundle):
    cases = axis_cases(bundle)
    card = SimulatorScorecard().to(bundle.preds.device)
    cases["scorecard"] = lambda: _scorecard_update(card, bundle)
    return cases


def _scores(bundle):
    card = SimulatorScorecard()
    _scorecard_update(card, bundle)
    return {name: float(value) for name, value in card.compute().items()}


SMALL = Size(episodes=3, branches=3, steps=5, height=16, width=16, objects=2)


@pytest.mark.parametrize("name", [*axis_cases(make_bundle(SMALL)), "scorecard"])
def test_update_holds_no_host_sync_point(name):
    bundle = make_bundle(SMALL)
    update = _updates(bundle)[name]
    update()  # first call: lazy set-up is not the update's steady state
    with profile() as prof:
        update()
    assert {event.name for event in prof.events()} & SYNC_OPS == set()


@pytest.mark.parametrize("dtype", HALF)
def test_half_precision_frames_score_as_their_float32_values(dtype):
    bundle = make_bundle(SMALL)
    half = bundle.to("cpu", getattr(torch, dtype))
    scores = _scores(half)
    assert all(torch.isfinite(torch.tensor(value)) for value in scores.values())
    # the axes compute in float32: half inputs give exactly what their float32 values give
    assert scores == pytest.approx(_scores(half.to("cpu", torch.float32)), rel=1e-6, abs=1e-6)
    # and rounding the frames to 16 bits moves no simulator axis by more than a hair
    reference = _scores(bundle)
    for axis in ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility"):
        assert scores[axis] == pytest.approx(reference[axis], abs=0.02), axis
    assert scores["psnr"] == pytest.approx(reference["psnr"], abs=1.0)


@CUDA
@pytest.mark.parametrize("dtype", ("float32", *HALF))
def test_every_update_runs_on_cuda_without_syncing(dtype):
    bundle = make_bundle(SMALL).to("cuda", getattr(torch, dtype))
    updates = _updates(bundle)
    for update in updates.values():
        update()  # warm-up outside the check: kernels load, caches fill
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for update in updates.values():
            update()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    cpu_scores = _scores(bundle.to("cpu", torch.float32))
    card = SimulatorScorecard().to("cuda")
    _scorecard_update(card, bundle)
    for name, value in card.compute().items():
        assert float(value) == pytest.approx(cpu_scores[name], abs=1e-3 if name not in ("psnr", "delta_psnr") else 0.05)


@CUDA
def test_benchmark_runs_on_cuda_with_every_dtype():
    command = [sys.executable, "-m", "benchmarks", "--device", "cuda", "--size", "2x2x4x3x16x16"]
    command += ["--repeats", "1", "--slow-repeats", "1", "--no-demo"]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    for dtype in ("float32", "float16", "bfloat16"):
        assert f"cuda:0, {dtype}" in proc.stdout


def _takes_card(bundle):
    return SimulatorScorecard(num_takes=bundle.target.shape[1]).to(bundle.preds.device)


def _takes_update(card, bundle):
    bundle.feed(card)
    return card


@CUDA
@pytest.mark.parametrize("dtype", ("float32", *HALF))
def test_takes_update_runs_on_cuda_without_syncing_and_matches_cpu(dtype):
    bundle = make_takes_bundle(SMALL, takes=3)
    on_cuda = bundle.to("cuda", getattr(torch, dtype))
    _takes_update(_takes_card(on_cuda), on_cuda)  # warm-up
    card = _takes_card(on_cuda)  # moving the states to the device is a copy, before the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _takes_update(card, on_cuda)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    cpu_bundle = bundle.to("cpu", getattr(torch, dtype))
    cpu = _takes_update(_takes_card(cpu_bundle), cpu_bundle)
    tolerance = 1e-3 if dtype == "float32" else 0.02
    for name, value in cpu.compute().items():
        if name in ("psnr", "delta_psnr"):
            continue
        assert float(card.compute()[name]) == pytest.approx(float(value), abs=tolerance), name
    for name, value in cpu.real_baseline().items():
        assert float(card.real_baseline()[name]) == pytest.approx(float(value), abs=tolerance), name
