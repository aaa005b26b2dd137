"""The Pusher and highway-env examples run end to end in fast mode and leave the gate's curves on TensorBoard."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import AXES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run_fast(example, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "offline"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / example), "--fast", "--out", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, time.perf_counter() - start


def _check_run(run, axes):
    summary = json.loads((run / "simgate" / "summary.json").read_text())
    assert summary["environment"]["scores"] == {axis: pytest.approx(1.0, abs=0.01) for axis in axes}
    assert summary["environment"]["passed"]
    assert set(summary["model"]["scores"]) == set(axes)
    assert summary["model"]["weakest_axis"] in axes
    assert list((run / "simgate").glob("check-*.json"))

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {f"simgate/{axis}" for axis in axes} | {"simgate/min_axis", "simgate/passed", "val/loss"} <= tags
    checks = events.Scalars("simgate/min_axis")
    assert len(checks) == 2  # --fast trains 2 epochs, one check each
    assert checks[-1].value == pytest.approx(min(summary["model"]["scores"].values()), abs=1e-6)
    return summary


def test_pusher_example_checks_the_robot_then_trains_with_the_gate(tmp_path):
    pytest.importorskip("mujoco")
    out, seconds = _run_fast("pusher_world_model.py", tmp_path)
    assert "ProbeSet(name='Pusher-v5', episodes=3, branches=3, horizon=6, frame=(3, 48, 48)" in out
    assert "the environment as its own model:" in out
    # no branch reaches Pusher's goal within a probe's horizon: task validity has nothing to judge
    axes = [axis for axis in AXES if axis != "task_validity"]
    summary = _check_run(tmp_path / "runs" / "pusher" / "version_0", axes)
    assert summary["model"]["scores"]["controllability"] < 0.65  # two epochs on a few windows: not a simulator yet
    assert seconds < 120  # promised: under a minute on 2 free cores; slack for a shared machine


def test_highway_example_checks_the_road_with_its_crash_judge_then_trains_with_the_gate(tmp_path):
    pytest.importorskip("highway_env")
    out, seconds = _run_fast("highway_world_model.py", tmp_path)
    assert "ProbeSet(name='highway-fast-v0', episodes=3, branches=3, horizon=6, frame=(3, 32, 64)" in out
    summary = _check_run(tmp_path / "runs" / "highway" / "version_0", list(AXES))
    assert "task_validity" in summary["environment"]["scores"]  # the crash judge on frames agrees with the road
    assert seconds < 120


def test_highway_crash_judge_reads_crash_red_from_frames():
    pytest.importorskip("highway_env")
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("highway_world_model", EXAMPLES / "highway_world_model.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    frames = torch.full((2, 3, 3, 8, 8), 100, dtype=torch.uint8)  # the road's grey
    frames[0, -1, :, 2:4, 2:5] = torch.tensor([255, 100, 100], dtype=torch.uint8)[:, None, None]  # a crashed car
    frames[1, -1, :, 2:4, 2:5] = torch.tensor([50, 200, 0], dtype=torch.uint8)[:, None, None]  # the ego, fine
    assert example.no_crash_seen(frames).tolist() == [False, True]
    assert example.no_crash_seen(frames.float() / 255.0).tolist() == [False, True]
