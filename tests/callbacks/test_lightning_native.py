"""The gate as a Lightning user meets it: LightningCLI from YAML, trainer.validate/test, fast_dev_run, checkpoint
names that carry the score, and never a silent skip."""

import json
import re
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from simgate_tracking.toy import make_probe_set as make_toy_probe_set
from simgate_tracking.toy.task import reached_goal
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, oracle_rollout, trainer

README = Path(__file__).resolve().parents[2] / "docs" / "lightning.md"  # the Lightning page of the docs site
CHECKPOINT_NAME = re.compile(r"epoch=(\d+)-simgate_min_axis=(\d\.\d{3})\.ckpt")


def _gate_warnings(caught, text):
    return [str(w.message) for w in caught if text in str(w.message)]


def _reports(directory, prefix="check"):
    return sorted(p.name for p in Path(directory).glob(f"{prefix}-*.json"))


# ------------------------------------------------------------------------------------------- LightningCLI
def test_lightning_cli_runs_readmes_yaml_with_a_saved_probe_file_and_gets_one_check(tmp_path, monkeypatch):
    pytest.importorskip("jsonargparse", reason="LightningCLI needs the `cli` extra")
    from lightning.pytorch.cli import LightningCLI

    section = README.read_text().split("<!-- section:lightning -->")[1].split("<!-- /section:lightning -->")[0]
    (tmp_path / "gate.yaml").write_text(re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1))
    monkeypatch.chdir(tmp_path)
    make_toy_probe_set(num_episodes=4, horizon=6, seed=0).save("probe.pt")  # as README's Python block saves it
    args = ["fit", "--config", "gate.yaml", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
    cli = LightningCLI(args=args)

    (gate,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, SimulatorGateCallback)]
    assert gate.probe_set.manifest_hash == make_toy_probe_set(num_episodes=4, horizon=6, seed=0).manifest_hash
    assert gate.runner.task_fn is reached_goal  # the import string "simgate_tracking.toy.task:reached_goal"
    assert len(gate.history) == 1 and "task_validity" in gate.history[0].scores
    run = Path(cli.trainer.log_dir)
    assert _reports(run / "simgate") == [f"check-{cli.trainer.global_step}.json"]
    # the checkpoint name carries the weakest axis's score, in the checkpoint folder itself (no "simgate/" folder)
    (checkpoint,) = (run / "checkpoints").iterdir()
    match = CHECKPOINT_NAME.fullmatch(checkpoint.name)
    assert match and float(match[2]) == pytest.approx(gate.history[0].min_axis, abs=5e-4)


def test_callback_takes_a_probe_path_and_import_strings(tmp_path):
    probe = make_probe_set()
    probe.save(tmp_path / "probe.pt")
    gate = SimulatorGateCallback(
        tmp_path / "probe.pt", rollout_fn="tests.helpers.tiny_world:oracle_rollout", batch_size=3
    )
    assert gate.probe_set.manifest_hash == probe.manifest_hash and gate.rollout_fn is oracle_rollout
    same = SimulatorGateCallback(str(tmp_path / "probe.pt"), rollout_fn="tests.helpers.tiny_world.oracle_rollout")
    assert same.rollout_fn is oracle_rollout
    # an untrained model that ignores actions, but the gate rolls out the function the import string names
    trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel(lr=0.0))
    assert gate.history[0].passed and gate.history[0].scores["controllability"] > 0.99


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(rollout_fn="tests.helpers.tiny_world:no_such_function"), ValueError, "`rollout_fn`.*does not import"),
        (dict(task_fn="no_such_package.module:judge"), ValueError, "`task_fn`.*does not import"),
        (dict(rollout_fn="tests.helpers.tiny_world:T"), ValueError, "`rollout_fn` to name something callable"),
    ],
)
def test_a_bad_import_string_fails_at_construction_naming_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        SimulatorGateCallback(make_probe_set(), **kwargs)


def test_a_probe_path_that_is_no_file_fails_at_construction(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        SimulatorGateCallback(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------ never silent
class NoValidationStep(TinyWorldModel):
    validation_step = pl.LightningModule.validation_step  # as a module that never defined one


class WithTestStep(TinyWorldModel):
    def test_step(self, batch, batch_idx):
        self.validation_step(batch, batch_idx)

    def test_dataloader(self):
        return self.val_dataloader()

    def predict_step(self, batch, batch_idx):
        return self.rollout(batch[0], batch[1])

    def predict_dataloader(self):
        return self.val_dataloader()


@pytest.mark.parametrize(
    ("model", "options", "reason"),
    [
        (TinyWorldModel, dict(limit_val_batches=0), "limit_val_batches=0"),
        (NoValidationStep, {}, "no `validation_step`"),
        (TinyWorldModel, dict(check_val_every_n_epoch=3), "`check_val_every_n_epoch=3` is more than `max_epochs=2`"),
        (TinyWorldModel, dict(gate_every=3), "validates 2 time(s) but the gate runs every 3"),
    ],
)
def test_a_fit_that_never_reaches_the_gate_warns_once_at_its_start(tmp_path, model, options, reason):
    gate = SimulatorGateCallback(make_probe_set(), every_n_epochs=options.pop("gate_every", 1), report_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, [gate], max_epochs=2, **options).fit(model())
    (said,) = _gate_warnings(caught, "SimulatorGateCallback")
    assert said.startswith("SimulatorGateCallback will never run during this fit") and reason in said
    assert gate.history == [] and _reports(tmp_path) == []


def test_a_fit_that_validates_nothing_warns_at_its_end(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(), report_dir=tmp_path)
    empty = DataLoader(TensorDataset(torch.zeros(0, 1), torch.zeros(0, 1), torch.zeros(0, 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel(), val_dataloaders=empty)
    (said,) = _gate_warnings(caught, "SimulatorGateCallback")
    assert said.startswith("SimulatorGateCallback ran no check during this fit")


def test_a_fit_that_checks_says_nothing_about_skipping(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(), report_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, [gate], max_epochs=1).fit(TinyWorldModel())
    assert not _gate_warnings(caught, "SimulatorGateCallback") and len(gate.history) == 1


@pytest.mark.parametrize("stage", ["test", "predict"])
def test_test_and_predict_warn_that_the_gate_does_not_run(tmp_path, stage):
    gate = SimulatorGateCallback(make_probe_set(), report_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(trainer(tmp_path, [gate]), stage)(WithTestStep())
    (said,) = _gate_warnings(caught, "SimulatorGateCallback")
    assert f"does not run in `trainer.{stage}()`" in said and "trainer.validate(model)" in said
    assert gate.history == [] and gate.last_check is None and not list(tmp_path.glob("*.json"))


# ------------------------------------------------------------------------------------------- validate
def test_validate_scores_the_best_checkpoint_once_and_leaves_the_fit_alone(tmp_path, caplog):
    gate = SimulatorGateCallback(make_probe_set(), batch_size=3, report_dir=tmp_path / "reports")
    stopper = GateEarlyStopping(patience=5)
    best = ModelCheckpoint(tmp_path / "ckpt", monitor="simgate/min_axis", mode="max", filename="{simgate_min_axis}")
    fit = trainer(tmp_path, [gate, stopper, best], max_epochs=3, enable_checkpointing=True, num_sanity_val_steps=2)
    fit.fit(TinyWorldModel(lr=0.004))
    fitted = [result.min_axis for result in gate.history]
    assert len(fitted) == 3 and _reports(tmp_path / "reports") == ["check-12.json", "check-4.json", "check-8.json"]

    with caplog.at_level("INFO"):
        fit.validate(ckpt_path="best")
    assert fit.callback_metrics["simgate/min_axis"].item() == pytest.approx(max(fitted), abs=1e-6)
    assert fit.callback_metrics["simgate_min_axis"].item() == pytest.approx(max(fitted), abs=1e-6)
    assert [result.min_axis for result in gate.history] == fitted and stopper.checks_seen == 3  # the fit's alone
    # the validated model is the checkpoint's; the Trainer's step stays the fit's (Lightning restores no loop)
    assert gate.last_check.result.min_axis == pytest.approx(max(fitted), abs=1e-6) and gate.last_check.alerts == ()
    assert _reports(tmp_path / "reports", "validate") == [f"validate-{fit.global_step}.json"]
    assert f"Simulator gate on the validated model (step {fit.global_step})" in caplog.text
    assert "simulator gate: " in caplog.text


def test_validate_in_a_fresh_trainer_scores_the_model_it_is_given(tmp_path):
    gate = SimulatorGateCallback(
        make_probe_set(), rollout_fn="tests.helpers.tiny_world:oracle_rollout", report_dir=tmp_path
    )
    results = trainer(tmp_path, [gate]).validate(TinyWorldModel())
    assert "val_loss" in results[0]  # what the model logged; the gate's scores are in callback_metrics
    assert gate.last_check.result.passed and gate.history == []
    report = json.loads((tmp_path / "validate-0.json").read_text())
    assert report["passed"] and report["step"] == 0


# ------------------------------------------------------------------------------ fast_dev_run, checkpoints
def test_fast_dev_run_scores_once_and_writes_no_report(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(), report_dir=tmp_path / "reports")
    fit = trainer(tmp_path, [gate], fast_dev_run=True)
    fit.fit(TinyWorldModel())
    assert len(gate.history) == 1 and "simgate/min_axis" in fit.callback_metrics
    assert not (tmp_path / "reports").exists()


def test_a_slash_in_a_checkpoint_filename_warns_with_the_fix(tmp_path):
    gate = SimulatorGateCallback(make_probe_set(), report_dir=tmp_path)
    slashed = ModelCheckpoint(tmp_path / "ckpt", filename="{epoch}-{simgate/min_axis:.3f}", monitor="simgate/min_axis")
    with pytest.warns(UserWarning, match="saves into a folder") as caught:
        trainer(tmp_path, [gate, slashed], max_epochs=1, enable_checkpointing=True).fit(TinyWorldModel())
    (said,) = _gate_warnings(caught, "ModelCheckpoint(filename=")
    assert "'{simgate_min_axis:.3f}'" in said and "auto_insert_metric_name=False" in said
    assert "'min_axis={simgate/min_axis:.3f}'" in said
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["epoch=0-simgate"]  # Lightning's folder, as warned
