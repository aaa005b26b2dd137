"""The gate on Lightning's own DDP (2 CPU processes, gloo) equals the single-process gate."""

import json

import pytest

from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, trainer


def _reports(directory):
    reports = [json.loads(p.read_text()) for p in directory.glob("check-*.json")]
    return sorted(reports, key=lambda report: report["step"])


def test_ddp_scorecard_equals_single_process(tmp_path):
    probe = make_probe_set(num_episodes=7)  # uneven shards: 4 + 3
    model_args = dict(lr=0.0, start=0.25, noise=0.02)
    single = SimulatorGateCallback(probe, batch_size=2, report_dir=tmp_path / "single")
    trainer(tmp_path / "a", [single, GateEarlyStopping(patience=2)], max_epochs=4).fit(TinyWorldModel(**model_args))

    ddp = SimulatorGateCallback(probe, batch_size=2, report_dir=tmp_path / "ddp")
    stopper = GateEarlyStopping(patience=2)
    fit = trainer(tmp_path / "b", [ddp, stopper], max_epochs=4, strategy="ddp_spawn", devices=2, deterministic=False)
    fit.fit(TinyWorldModel(**model_args))

    one, two = _reports(tmp_path / "single"), _reports(tmp_path / "ddp")
    # every rank stopped together after two of four epochs (a split decision would hang DDP); rank zero wrote
    assert len(one) == len(two) == 2
    assert not any(report["passed"] for report in one)
    for a, b in zip(one, two, strict=True):
        assert b["scores"] == pytest.approx(a["scores"], abs=1e-6)
        assert b["extras"] == pytest.approx(a["extras"], abs=1e-4)
        assert b["episode_scores"]["episode_index"] == list(range(7))
        for axis, values in a["episode_scores"].items():
            assert b["episode_scores"][axis] == pytest.approx(values, abs=1e-6)
        assert 0.1 < a["scores"]["controllability"] < 0.99
