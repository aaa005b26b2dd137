"""Resuming a fit with another probe set: a stable state key, a warning, a new history, early stopping counts afresh."""

import warnings

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, trainer


@pytest.fixture(scope="module")
def first_fit(tmp_path_factory):
    """Two failing checks on probe set A, saved in ``last.ckpt``."""
    root = tmp_path_factory.mktemp("first")
    gate, stopper = SimulatorGateCallback(make_probe_set(seed=1)), GateEarlyStopping(patience=3)
    ckpt = ModelCheckpoint(dirpath=root / "ckpt", save_last=True)
    trainer(root, [gate, stopper, ckpt], max_epochs=2, enable_checkpointing=True).fit(TinyWorldModel(lr=0.0))
    assert len(gate.history) == 2 and stopper.failures_in_a_row == 2
    return gate, root / "ckpt" / "last.ckpt"


def _resume(tmp_path, probe, ckpt_path, max_epochs=3):
    gate, stopper = SimulatorGateCallback(probe), GateEarlyStopping(patience=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, [gate, stopper], max_epochs=max_epochs).fit(TinyWorldModel(lr=0.0), ckpt_path=ckpt_path)
    return gate, stopper, [str(w.message) for w in caught]


def test_the_state_key_does_not_depend_on_the_probe_set():
    one, other = SimulatorGateCallback(make_probe_set(seed=1)), SimulatorGateCallback(make_probe_set(seed=2))
    assert one.probe_set.manifest_hash != other.probe_set.manifest_hash
    assert one.state_key == other.state_key
    assert one.probe_set.manifest_hash[:16] not in one.state_key


def test_resume_with_another_probe_set_warns_and_starts_a_new_history(tmp_path, first_fit):
    _, ckpt_path = first_fit
    gate, stopper, messages = _resume(tmp_path, make_probe_set(seed=2), ckpt_path)
    assert any("came from another probe set" in m and "new history" in m for m in messages)
    assert any("GateEarlyStopping starts counting afresh" in m for m in messages)
    # one check on the new probe set (epoch 3 of 3): the old probe set's two failures are not counted with it
    assert len(gate.history) == 1 and gate.validation_runs == 3
    assert stopper.checks_seen == 1 and stopper.failures_in_a_row == 1
    assert stopper.stopped_at_step is None
    assert stopper.manifest_hash == gate.probe_set.manifest_hash


def test_resume_with_the_same_probe_set_continues_and_stops(tmp_path, first_fit):
    first, ckpt_path = first_fit
    gate, stopper, messages = _resume(tmp_path, make_probe_set(seed=1), ckpt_path, max_epochs=5)
    assert not any("another probe set" in m or "afresh" in m for m in messages)
    assert [r.to_dict() for r in gate.history[:2]] == [r.to_dict() for r in first.history]
    assert stopper.failures_in_a_row == 3 and len(gate.history) == 3  # the third failure in a row stops the fit
    assert stopper.stopped_at_step is not None


def test_a_checkpoint_saved_under_the_old_key_with_the_probe_hash_still_loads(tmp_path, first_fit):
    first, ckpt_path = first_fit
    checkpoint = torch.load(ckpt_path, weights_only=False)
    states = checkpoint["callbacks"]
    key = first.state_key
    old_key = f"SimulatorGateCallback{{'probe': '{first.probe_set.manifest_hash[:16]}', 'every_n_epochs': 1}}"
    states[old_key] = states.pop(key)
    torch.save(checkpoint, tmp_path / "old.ckpt")
    gate, stopper, _ = _resume(tmp_path, make_probe_set(seed=1), str(tmp_path / "old.ckpt"))
    assert [r.to_dict() for r in gate.history[:2]] == [r.to_dict() for r in first.history]
    assert len(gate.history) == 3 and stopper.failures_in_a_row == 3


def test_two_named_gates_keep_their_own_histories_in_one_checkpoint(tmp_path):
    probes = {"near": make_probe_set(seed=1), "far": make_probe_set(seed=2)}
    gates = [SimulatorGateCallback(probe, name=name) for name, probe in probes.items()]
    assert gates[0].state_key != gates[1].state_key
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer(tmp_path / "a", [*gates, ckpt], max_epochs=1, enable_checkpointing=True).fit(TinyWorldModel(lr=0.0))
    resumed = [SimulatorGateCallback(probe, name=name) for name, probe in probes.items()]
    fit = trainer(tmp_path / "b", resumed, max_epochs=2)
    fit.fit(TinyWorldModel(lr=0.0), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    for before, after in zip(gates, resumed, strict=True):
        assert [r.to_dict() for r in after.history[:1]] == [r.to_dict() for r in before.history]
        assert len(after.history) == 2
    assert resumed[0].history[0].to_dict() != resumed[1].history[0].to_dict()  # each gate its own probe set's


@pytest.mark.parametrize("name", ["", 3, b"gate"])
def test_a_bad_gate_name_is_refused_naming_the_argument(name):
    with pytest.raises(ValueError, match="`name` to be None or a non-empty str"):
        SimulatorGateCallback(make_probe_set(seed=1), name=name)
