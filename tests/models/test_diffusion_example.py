"""examples/diffusion_world_model.py --fast trains the diffusion world model beside ToyWorldModel with the gate on."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import AXES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diffusion_world_model.py"


def _scalars(run, tag):
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return events.Scalars(tag)


def test_fast_example_gates_both_models_on_tensorboard_and_compares_them_axis_by_axis(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    command = [sys.executable, str(EXAMPLE), "--fast", "--out", str(tmp_path / "runs")]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    checks = re.findall(r"(?m)^\s+(\d)  ([\d.]+) (\w+)\s+([\d.]+) (\w+)$", out)
    assert [int(row[0]) for row in checks] == [1, 2]  # --fast: two epochs, one check each, for both models
    last = {
        m.group(1): (float(m.group(2)), float(m.group(3)), m.group(4))
        for m in re.finditer(r"(?m)^(\w+)\s+([\d.]+)\s+([\d.]+)\s+(diffusion|toy|tie)$", out)
    }
    assert set(last) == set(AXES)
    for diffusion, toy, winner in last.values():
        assert winner == ("diffusion" if diffusion > toy + 0.005 else "toy" if toy > diffusion + 0.005 else "tie")
    for name, column in (("diffusion", 1), ("toy", 3)):
        run = tmp_path / "runs" / name / "version_0"
        logged = _scalars(run, "simgate/min_axis")
        assert len(logged) == 2
        # the table prints what TensorBoard holds: the same weakest axis at each check
        assert [round(event.value, 3) for event in logged] == [float(check[column]) for check in checks]
        assert {f"simgate/{axis}" for axis in AXES} <= set(EventAccumulator(str(run)).Reload().Tags()["scalars"])
    assert (tmp_path / "runs" / "diffusion-vs-toy.png").stat().st_size > 10_000  # both runs' curves, drawn
    # a sampled model replays its resets: the gate's second pass reproduces every rollout bitwise
    assert last["reset_reproducibility"][0] == 1.0
