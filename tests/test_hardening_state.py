"""A corrupted checkpoint state warns, naming the field, falls back to defaults and never aborts ``fit``."""

import math
import warnings

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from simgate_tracking import SimulatorGate
from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, trainer

PROBE = make_probe_set()
RESULT = SimulatorGate().evaluate({"controllability": 0.5, "temporal_consistency": 0.9}).to_dict()


def _good_state():
    return {"history": [dict(RESULT)], "validation_runs": 1, "alert_policy": {}, "manifest_hash": PROBE.manifest_hash}


def _with(**fields):
    return {**_good_state(), **fields}


def _result_with(**fields):
    return _with(history=[{**RESULT, **fields}])


def _without(key):
    item = dict(RESULT)
    del item[key]
    return _with(history=[item])


# (name, bad state, the field its warning names, what must be back at its default)
BAD_GATE_STATES = [
    ("none", None, "expected a dict", ("history", "validation_runs")),
    ("list instead of dict", [1, 2], "expected a dict", ("history", "validation_runs")),
    ("string", "garbage", "expected a dict", ("history", "validation_runs")),
    ("history not a list", _with(history="abc"), "`history`", ("history",)),
    ("history a dict", _with(history={"0": RESULT}), "`history`", ("history",)),
    ("history entry None", _with(history=[None]), "`history[0]`", ("history",)),
    ("history entry a list", _with(history=[[1, 2]]), "`history[0]`", ("history",)),
    ("NaN score", _result_with(scores={"controllability": math.nan}), "`history[0]`", ("history",)),
    ("inf threshold", _result_with(thresholds={"controllability": math.inf}), "`history[0]`", ("history",)),
    ("string score", _result_with(scores={"controllability": "0.5"}), "`history[0]`", ("history",)),
    ("missing thresholds", _without("thresholds"), "`history[0]`", ("history",)),
    ("missing weakest axis", _without("weakest_axis"), "`history[0]`", ("history",)),
    ("bad interval", _result_with(intervals={"controllability": "wide"}), "`history[0]`", ("history",)),
    ("negative validation runs", _with(validation_runs=-3), "`validation_runs`", ("validation_runs",)),
    ("string validation runs", _with(validation_runs="3"), "`validation_runs`", ("validation_runs",)),
    ("bool validation runs", _with(validation_runs=True), "`validation_runs`", ("validation_runs",)),
    ("int hash", _with(manifest_hash=123), "`manifest_hash`", ()),
    ("alert policy a list", _with(alert_policy=[1]), "`alert_policy`", ()),
    ("alert policy negative checks", _with(alert_policy={"checks": -1}), "`alert_policy`", ()),
    ("alert policy NaN best", _with(alert_policy={"best": {"controllability": math.nan}}), "`alert_policy`", ()),
    ("extra key", _with(surprise=1), "unknown field(s) surprise", ()),
]
DEFAULTS = {"history": [], "validation_runs": 0}


def _load(callback, state):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback.load_state_dict(state)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize(("name", "state", "named", "defaulted"), BAD_GATE_STATES, ids=[c[0] for c in BAD_GATE_STATES])
def test_a_bad_gate_state_warns_naming_the_field_and_keeps_defaults(name, state, named, defaulted):
    gate = SimulatorGateCallback(PROBE)
    messages = _load(gate, state)
    assert any(named in m and "SimulatorGateCallback" in m for m in messages), messages
    for field in defaulted:
        assert getattr(gate, field) == DEFAULTS[field]
    if "history" not in defaulted and isinstance(state, dict):
        assert len(gate.history) == 1  # only the bad field was dropped
    assert gate.alert_policy.checks >= 0 and gate.alert_policy.update(SimulatorGate().evaluate(RESULT["scores"]), 9)
    gate.state_dict()  # and it saves again


def test_a_good_state_and_an_older_one_without_keys_load_without_a_word():
    gate = SimulatorGateCallback(PROBE)
    assert _load(gate, _good_state()) == []
    assert len(gate.history) == 1 and gate.validation_runs == 1
    assert _load(gate, {"history": [RESULT]}) == [] and len(gate.history) == 1


BAD_STOPPING_STATES = [
    ("none", None, "expected a dict"),
    ("list", [3, 2], "expected a dict"),
    ("negative failures", {"checks_seen": 5, "failures_in_a_row": -100}, "`failures_in_a_row`"),
    ("zero checks", {"checks_seen": 0, "failures_in_a_row": 4}, "`failures_in_a_row`"),
    ("float failures", {"checks_seen": 5, "failures_in_a_row": 1.5}, "`failures_in_a_row`"),
    ("bool failures", {"checks_seen": 5, "failures_in_a_row": True}, "`failures_in_a_row`"),
    ("negative checks", {"checks_seen": -1}, "`checks_seen`"),
    ("string checks", {"checks_seen": "7"}, "`checks_seen`"),
    ("negative step", {"stopped_at_step": -5}, "`stopped_at_step`"),
    ("string step", {"stopped_at_step": "end"}, "`stopped_at_step`"),
    ("int hash", {"manifest_hash": 5}, "`manifest_hash`"),
    ("extra key", {"patience": 1}, "unknown field(s) patience"),
]


@pytest.mark.parametrize(("name", "state", "named"), BAD_STOPPING_STATES, ids=[c[0] for c in BAD_STOPPING_STATES])
def test_a_bad_early_stopping_state_warns_naming_the_field_and_keeps_defaults(name, state, named):
    stopper = GateEarlyStopping(patience=2)
    messages = _load(stopper, state)
    assert any(named in m and "GateEarlyStopping" in m for m in messages), messages
    assert 0 <= stopper.failures_in_a_row <= stopper.checks_seen
    assert stopper.stopped_at_step is None or stopper.stopped_at_step >= 0
    failing = SimulatorGate().evaluate({"controllability": 0.1})
    assert [stopper.decide(failing) for _ in range(2)] == [False, True]  # early stopping still works


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    gate, stopper = SimulatorGateCallback(PROBE), GateEarlyStopping(patience=5)
    ckpt = ModelCheckpoint(dirpath=root / "ckpt", save_last=True)
    trainer(root, [gate, stopper, ckpt], max_epochs=2, enable_checkpointing=True).fit(TinyWorldModel(lr=0.0))
    return torch.load(root / "ckpt" / "last.ckpt", weights_only=False), gate.state_key, stopper.state_key


@pytest.mark.parametrize(
    ("gate_state", "stopping_state", "named"),
    [
        ([None], {"checks_seen": 2, "failures_in_a_row": -100}, ("expected a dict", "`failures_in_a_row`")),
        (_result_with(scores={"controllability": math.nan}), {"checks_seen": "x"}, ("`history[0]`", "`checks_seen`")),
        (_with(validation_runs=-7, surprise=[1]), {"stopped_at_step": -1}, ("`validation_runs`", "stopped_at_step")),
    ],
)
def test_a_corrupted_checkpoint_resumes_fit_with_warnings(tmp_path, checkpoint, gate_state, stopping_state, named):
    saved, gate_key, stopping_key = checkpoint
    corrupted = {**saved, "callbacks": {**saved["callbacks"], gate_key: gate_state, stopping_key: stopping_state}}
    torch.save(corrupted, tmp_path / "bad.ckpt")
    gate, stopper = SimulatorGateCallback(PROBE), GateEarlyStopping(patience=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(tmp_path, [gate, stopper], max_epochs=3)
        fit.fit(TinyWorldModel(lr=0.0), ckpt_path=str(tmp_path / "bad.ckpt"))
    messages = [str(w.message) for w in caught]
    for field in named:
        assert any(field in m for m in messages), (field, messages)
    assert fit.current_epoch == 3 and len(gate.history) >= 1  # the fit went on and the gate ran
    assert stopper.checks_seen == len(gate.history) and stopper.failures_in_a_row <= stopper.checks_seen
