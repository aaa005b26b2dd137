"""SimulatorGateCallback and GateEarlyStopping with a real Trainer on a tiny world model."""

import json
import random
import warnings

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from simgate_tracking import AXES, evaluate
from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from simgate_tracking.rollout import RolloutError
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, trainer


def test_gate_runs_each_validation_and_skips_sanity_check(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(), batch_size=4)
    fit = trainer(tmp_path, [gate], max_epochs=3, num_sanity_val_steps=2)
    fit.fit(TinyWorldModel())
    assert len(gate.history) == 3  # three validation runs, the sanity check not among them
    metrics = fit.callback_metrics
    for name in ("controllability", "temporal_consistency", "reset_reproducibility", "psnr", "ssim", "delta_psnr"):
        assert f"simgate/{name}" in metrics
    last = gate.history[-1]
    assert metrics["simgate/min_axis"].item() == pytest.approx(last.min_axis)
    assert metrics["simgate/passed"].item() == float(last.passed)
    assert metrics["simgate/weakest_axis"].item() == AXES.index(last.weakest_axis)
    # the model learns: the scorecard improves from a failing first check
    assert not gate.history[0].passed and gate.history[-1].passed
    assert gate.history[-1].min_axis > gate.history[0].min_axis + 0.2


def test_every_n_epochs_counts_validation_runs(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(), every_n_epochs=2)
    trainer(tmp_path, [gate], max_epochs=5).fit(TinyWorldModel())
    assert len(gate.history) == 2
    assert gate.validation_runs == 5


def test_json_report_per_check(tmp_path):
    probe = make_probe_set()
    gate = SimulatorGateCallback(probe, batch_size=4)
    fit = trainer(tmp_path, [gate], max_epochs=2)
    fit.fit(TinyWorldModel())
    reports = sorted((tmp_path / "simgate").glob("check-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    assert [int(p.stem.split("-")[1]) for p in reports] == [4, 8]  # 4 training batches per epoch
    report = json.loads(reports[-1].read_text())
    assert report["manifest_hash"] == probe.manifest_hash
    assert report["scores"] == pytest.approx(gate.history[-1].scores)
    assert report["weakest_axis"] == gate.history[-1].weakest_axis
    assert report["passed"] == gate.history[-1].passed
    assert report["thresholds"] == {axis: 0.65 for axis in report["scores"]}
    episodes = report["episode_scores"]
    assert episodes["episode_index"] == list(range(len(probe)))
    assert np.mean(episodes["controllability"]) == pytest.approx(report["scores"]["controllability"], abs=1e-6)
    assert np.mean(episodes["reset_reproducibility"]) == pytest.approx(report["scores"]["reset_reproducibility"])


def test_lightning_early_stopping_and_checkpoint_monitor_the_gate(tmp_path):
    gate = SimulatorGateCallback(make_probe_set())
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="simgate/min_axis", mode="max", save_top_k=1)
    stop = EarlyStopping(monitor="simgate/min_axis", mode="max", patience=1, min_delta=0.5)
    fit = trainer(tmp_path, [gate, best, stop], max_epochs=6, enable_checkpointing=True)
    fit.fit(TinyWorldModel())
    assert len(gate.history) == 2  # min_axis improved by less than 0.5 once: stopped
    assert best.best_model_score.item() == pytest.approx(max(r.min_axis for r in gate.history))


def _fit_weights(tmp_path, callbacks):
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = TinyWorldModel(dropout=0.3)
    trainer(tmp_path, callbacks, max_epochs=3).fit(model)
    return model.weights.detach().clone(), torch.rand(1), np.random.rand(), random.random()


def test_callback_never_perturbs_training(tmp_path):
    probe = make_probe_set()
    without = _fit_weights(tmp_path / "a", [])
    with_gate = _fit_weights(tmp_path / "b", [SimulatorGateCallback(probe, batch_size=4)])
    assert torch.equal(without[0], with_gate[0])  # bitwise identical weights
    assert without[1:] == with_gate[1:]  # and every RNG continues where it would have


def test_model_mode_and_grad_restored(tmp_path):
    model = TinyWorldModel()
    gate = SimulatorGateCallback(make_probe_set())
    fit = trainer(tmp_path, [gate], max_epochs=1)
    fit.fit(model)
    model.train()
    with torch.enable_grad():
        gate.run_check(fit, model)
        assert model.training and torch.is_grad_enabled()


def test_gate_early_stopping_after_patience_failures(tmp_path):
    stopper = GateEarlyStopping(patience=2)
    gate = SimulatorGateCallback(make_probe_set())
    fit = trainer(tmp_path, [gate, stopper], max_epochs=10)
    fit.fit(TinyWorldModel(lr=0.0))  # never learns: fails every check
    assert len(gate.history) == 2
    assert fit.current_epoch == 2
    assert stopper.failures_in_a_row == 2
    assert "controllability" in stopper.reason or "temporal_consistency" in stopper.reason


def test_gate_early_stopping_grace_checks(tmp_path):
    stopper = GateEarlyStopping(patience=1, grace_checks=3)
    gate = SimulatorGateCallback(make_probe_set())
    trainer(tmp_path, [gate, stopper], max_epochs=10).fit(TinyWorldModel(lr=0.0))
    assert len(gate.history) == 4


def test_gate_early_stopping_needs_the_gate(tmp_path):
    with pytest.raises(RuntimeError, match="needs a SimulatorGateCallback"):
        trainer(tmp_path, [GateEarlyStopping()], max_epochs=1).fit(TinyWorldModel())


def test_checkpoint_and_resume_continue_history_and_counters(tmp_path):
    probe = make_probe_set()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    gate, stopper = SimulatorGateCallback(probe), GateEarlyStopping(patience=5)
    trainer(tmp_path, [gate, stopper, ckpt], max_epochs=2, enable_checkpointing=True).fit(TinyWorldModel(lr=0.0))
    assert stopper.failures_in_a_row == 2

    gate2, stopper2 = SimulatorGateCallback(probe), GateEarlyStopping(patience=5)
    resumed = trainer(tmp_path, [gate2, stopper2], max_epochs=3)
    resumed.fit(TinyWorldModel(lr=0.0), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert len(gate2.history) == 3
    assert [r.to_dict() for r in gate2.history[:2]] == [r.to_dict() for r in gate.history]
    assert stopper2.failures_in_a_row == 3 and stopper2.checks_seen == 3
    assert gate2.validation_runs == 3


def test_evaluate_matches_the_callback(tmp_path):
    probe = make_probe_set()
    gate = SimulatorGateCallback(probe, batch_size=4)
    model = TinyWorldModel()
    trainer(tmp_path, [gate], max_epochs=2).fit(model)
    result = evaluate(model, probe, batch_size=4)
    assert result.scores == pytest.approx(gate.history[-1].scores, abs=1e-6)
    assert result.passed == gate.history[-1].passed


def test_stochastic_model_reproduces_with_per_episode_generators(tmp_path):
    result = evaluate(TinyWorldModel(noise=0.05), make_probe_set(), batch_size=4)
    assert result.scores["reset_reproducibility"] == 1.0


def test_probe_that_does_not_fit_fails_at_fit_start(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(frame_size=16))
    model = TinyWorldModel()
    with pytest.raises(RolloutError, match=r"does not fit the model.*context \(1, 1, 3, 16, 16\)"):
        trainer(tmp_path, [gate], max_epochs=1).fit(model)
    assert model.weights.abs().sum() == 0  # failed before any training step


def test_rollout_of_wrong_shape_names_expected_and_got(tmp_path):
    def cropped(context, actions, generator=None):
        return torch.zeros(actions.shape[0], actions.shape[1], 3, 4, 4)

    gate = SimulatorGateCallback(make_probe_set(), rollout_fn=cropped)
    with pytest.raises(RolloutError, match=r"shape \(B, T, C, H, W\) = \(1, 4, 3, 8, 8\) but got \(1, 4, 3, 4, 4\)"):
        trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel())


def test_rollout_of_wrong_dtype_names_expected_and_got(tmp_path):
    def integer_rollout(context, actions, generator=None):
        return torch.zeros(actions.shape[0], actions.shape[1], 3, 8, 8, dtype=torch.int32)

    gate = SimulatorGateCallback(make_probe_set(), rollout_fn=integer_rollout)
    with pytest.raises(RolloutError, match="float frames in \\[0, 1\\] or uint8 but got dtype torch.int32"):
        trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel())


def test_nan_rollout_scores_zero_and_training_goes_on(tmp_path):
    gate = SimulatorGateCallback(make_probe_set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(tmp_path, [gate], max_epochs=2)
        fit.fit(TinyWorldModel(nan=True))
    assert fit.current_epoch == 2
    assert len(gate.history) == 2
    assert all(score == 0.0 for score in gate.history[-1].scores.values())
    assert not gate.history[-1].passed
    assert any("NaN or Inf" in str(w.message) for w in caught)


def test_module_without_rollout_needs_rollout_fn(tmp_path):
    class NoRollout(TinyWorldModel):
        rollout = None

    with pytest.raises(TypeError, match="rollout_fn"):
        trainer(tmp_path, [SimulatorGateCallback(make_probe_set())], max_epochs=1).fit(NoRollout())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_n_epochs": 0}, "`every_n_epochs` to be an int >= 1 but got 0"),
        ({"num_sample_episodes": -1}, "`num_sample_episodes` to be an int >= 0 but got -1"),
        ({"threshold": 1.5}, "`threshold` to be a float in \\[0, 1\\] but got 1.5"),
        ({"batch_size": 0}, "`batch_size` to be a positive int but got 0"),
        ({"task_fn": lambda frames: frames.mean((1, 2, 3, 4))}, "probe_set.outcomes"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulatorGateCallback(make_probe_set(), **kwargs)


def test_progress_bar_shows_gate_batches(tmp_path, capsys):
    gate = SimulatorGateCallback(make_probe_set(), batch_size=2)
    trainer(tmp_path, [gate], max_epochs=1, enable_progress_bar=True).fit(TinyWorldModel())
    assert "Simulator gate" in capsys.readouterr().out
