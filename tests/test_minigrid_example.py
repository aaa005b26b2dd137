"""examples/minigrid_world_model.py runs end to end in fast mode and leaves the gate's curves on TensorBoard."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import AXES

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minigrid_world_model.py"


def test_minigrid_example_trains_with_the_gate_and_logs_to_tensorboard(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--fast", "--out", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "runs" / "minigrid" / "version_0"

    summary = json.loads((run / "simgate" / "summary.json").read_text())
    assert all(summary["environment"]["scores"][axis] >= 0.99 for axis in AXES)
    assert set(summary["model"]["scores"]) == set(AXES)
    assert summary["model"]["weakest_axis"] in AXES
    assert list((run / "simgate").glob("check-*.json"))

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {f"simgate/{axis}" for axis in AXES} | {"simgate/min_axis", "simgate/passed"} <= tags
    assert "val/loss" in tags
    min_axis = events.Scalars("simgate/min_axis")[-1].value
    assert min_axis == min(summary["model"]["scores"].values())
