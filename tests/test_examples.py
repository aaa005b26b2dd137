"""Every example in examples/ runs as a user runs it (in its --fast mode) and leaves what it promises."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import AXES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--fast", "--out", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _scalars(run, tag):
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return events.Scalars(tag)


def test_add_callback_puts_the_gate_in_callback_metrics_and_on_tensorboard(tmp_path):
    out = _run("add_callback", tmp_path)
    assert "check 1: min_axis" in out
    listed = re.search(r"in trainer.callback_metrics: (\[.*\])", out).group(1)
    assert {f"simgate/{axis}" for axis in AXES} | {"simgate/min_axis", "simgate/passed"} <= set(
        ast.literal_eval(listed)
    )
    run = tmp_path / "runs" / "add_callback" / "version_0"
    assert [e.step for e in _scalars(run, "simgate/min_axis")] == [1]  # where Lightning logs that validation run
    assert (run / "simgate" / "check-2.json").is_file()  # named by global_step, as ModelCheckpoint's {step}


def test_plain_pytorch_loop_scores_every_epoch_and_writes_reports_and_curves(tmp_path):
    out = _run("plain_pytorch_loop", tmp_path)
    assert out.count("simulator gate: ") == 2
    run = tmp_path / "runs" / "plain_pytorch_loop"
    reports = {path.name: json.loads(path.read_text()) for path in (run / "simgate").glob("check-*.json")}
    assert sorted(reports) == ["check-2.json", "check-4.json"]
    assert set(reports["check-4.json"]["scores"]) == set(AXES)
    assert [e.step for e in _scalars(run, "simgate/object_persistence")] == [2, 4]
    assert [e.value for e in _scalars(run, "simgate/min_axis")] == pytest.approx(
        [min(reports[f"check-{s}.json"]["scores"].values()) for s in (2, 4)]
    )


def test_early_stopping_example_keeps_the_best_checkpoint_by_the_weakest_axis(tmp_path):
    out = _run("early_stopping_and_checkpoints", tmp_path)
    scores = json.loads(re.search(r"min_axis at each check: (\[.*\])", out).group(1))
    assert len(scores) == 3  # --fast trains 3 epochs; the grace period keeps GateEarlyStopping quiet
    best = re.search(r"best checkpoint: (\S+) \(simgate/min_axis = ([\d.]+)\)", out)
    assert Path(best.group(1)).is_file()
    assert float(best.group(2)) == pytest.approx(max(scores), abs=1e-3)
    assert f"the best checkpoint scored again: min_axis {float(best.group(2)):.3f}" in out


def test_custom_world_model_example_shows_the_seed_matters_and_reality_is_the_ceiling(tmp_path):
    out = _run("custom_world_model", tmp_path)
    yours, careless, reality = re.split(r"(?m)^\d\. ", out)[1:4]
    assert re.search(r"reset_reproducibility\s+1\.000", yours)
    assert re.search(r"reset_reproducibility\s+0\.\d+ \[0\.\d+, 0\.\d+\]  > 0\.65  fail", careless)
    assert "simulator gate: PASS" in reality
    assert all(re.search(rf"{axis}\s+1\.000", reality) for axis in AXES)
