"""The planning probe in training: a real Trainer, JSON reports, W&B and TensorBoard dashboards, 2-process DDP."""

import io
import json
import re

import lightning.pytorch as pl
import pytest

pytest.importorskip("wandb")
pytest.importorskip("PIL")
pytest.importorskip("tensorboard")

import torch
import wandb
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import SimulatorGate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.cli import main
from simgate_tracking.planning import PlanningProbe, PlanningResult
from simgate_tracking.report import GateCheck
from simgate_tracking.toy import ToyWorld, make_probe_set
from simgate_tracking.toy.data import ToyWorldDataModule
from simgate_tracking.toy.demo import run_demo
from simgate_tracking.toy.model import ToyWorldModel
from simgate_tracking.toy.planning import ToyPlanningEnvironment, toy_goal_progress
from simgate_tracking.toy.task import reached_goal
from tests.helpers.tiny_world import trainer
from tests.helpers.wandb_reader import history_rows, read_finished_run, run_file

MAX_STEPS = 8
PLANNING_KEYS = ("planning_success", "planning_success_real")


def _gate(**options):
    planning = PlanningProbe(
        ToyPlanningEnvironment(), toy_goal_progress, seeds=[0, 2], max_steps=MAX_STEPS, horizon=3, candidates=6
    )
    return SimulatorGateCallback(
        make_probe_set(num_episodes=4, horizon=6), task_fn=reached_goal, planning_probe=planning, **options
    )


def _data():
    return ToyWorldDataModule(train_windows=4, val_windows=2, batch_size=2, horizon=6)


def _reports(directory):
    return sorted((json.loads(p.read_text()) for p in directory.rglob("check-*.json")), key=lambda r: r["step"])


def test_planning_every_n_checks_reaches_metrics_reports_and_both_dashboards(tmp_path):
    wandb_logger = WandbLogger(save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True))
    tensorboard = TensorBoardLogger(tmp_path, name="tb")
    gate = _gate(planning_every_n_checks=2, num_sample_episodes=1, batch_size=4)
    fit = trainer(tmp_path, [gate], max_epochs=3, logger=[wandb_logger, tensorboard], log_every_n_steps=1)
    fit.fit(ToyWorldModel(), datamodule=_data())
    wandb_logger.experiment.finish()
    steps, planned = [2, 4, 6], [2, 6]  # two training batches per epoch; checks 1 and 3 plan

    reports = _reports(tmp_path)
    assert [r["step"] for r in reports if "planning" in r] == planned
    assert [r["step"] for r in reports if "planning_success" in r["extras"]] == planned
    assert not any(key in r["scores"] for r in reports for key in PLANNING_KEYS)  # reported, not gated
    last = reports[-1]
    assert last["extras"]["planning_success_real"] == last["planning"]["success_rate_real"] == 1.0
    assert last["planning"]["steps_real"] == [4, 2]  # per episode: the goal is a few steps away
    assert (
        sum(last["planning"]["success"]) / 2 == last["planning"]["success_rate"] == last["extras"]["planning_success"]
    )
    assert {"task_validity", "decision_no_regret"} <= {*last["scores"], *last["extras"]}  # decision mode
    assert fit.callback_metrics["simgate/planning_success"].item() == last["extras"]["planning_success"]

    events = EventAccumulator(str(tensorboard.log_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    # the dashboards put each check where Lightning logs its validation run's metrics: one step before global_step
    for key in PLANNING_KEYS:
        assert [e.step + 1 for e in events.Scalars(f"simgate/{key}")] == planned
    assert [e.step + 1 for e in events.Scalars("simgate/decision_no_regret")] == steps
    gifs = events.Images("simgate/planning")
    assert [e.step + 1 for e in gifs] == planned
    assert Image.open(io.BytesIO(gifs[0].encoded_image_string)).n_frames == MAX_STEPS
    (layout,) = events.Tensors("custom_scalars__config__")
    assert b"decision quality" in layout.tensor_proto.string_val[0]

    rows = [row for row in history_rows(read_finished_run(tmp_path)) if "simgate/min_axis" in row]
    assert [row["trainer/global_step"] + 1 for row in rows if "simgate/planning_success" in row] == planned
    assert all("simgate/task_validity" in row and "simgate/decision_no_regret" in row for row in rows)
    videos = [row["simgate/planning"] for row in rows if "simgate/planning" in row]
    assert len(videos) == 2 and videos[0]["caption"].startswith("step 2, planning: ")
    assert (run_file(tmp_path).parent / "files" / videos[0]["path"]).is_file()


def test_a_planning_probe_that_does_not_fit_the_model_warns_and_training_goes_on(tmp_path):
    large = ToyPlanningEnvironment(ToyWorld(size=48))  # 48 px frames for a model of 32 px ones
    planning = PlanningProbe(large, toy_goal_progress, seeds=[0], max_steps=2, horizon=2, candidates=2)
    gate = SimulatorGateCallback(make_probe_set(num_episodes=2, horizon=6), planning_probe=planning)
    with pytest.warns(UserWarning, match="The planning probe failed and is skipped at this check: "):
        fit = trainer(tmp_path, [gate], max_epochs=2)
        fit.fit(ToyWorldModel(), datamodule=_data())
    assert fit.current_epoch == 2 and len(gate.history) == 2
    assert not any(key in gate.history[-1].extras for key in PLANNING_KEYS)


def _weights(tmp_path, callbacks):
    torch.manual_seed(0)
    model = ToyWorldModel()
    trainer(tmp_path, callbacks, max_epochs=2).fit(model, datamodule=_data())
    return torch.cat([p.detach().flatten() for p in model.parameters()]), torch.rand(2)


def test_a_threshold_gates_planning_success_and_training_is_untouched(tmp_path):
    gate = _gate(threshold={"planning_success": 0.99}, planning_every_n_checks=1, num_sample_episodes=0)
    with_planning = _weights(tmp_path / "a", [gate])
    without = _weights(tmp_path / "b", [])
    assert torch.equal(with_planning[0], without[0]) and torch.equal(with_planning[1], without[1])
    for result in gate.history:
        assert result.thresholds["planning_success"] == 0.99 and result.scores["planning_success"] < 0.99
        assert not result.passed and "planning_success" in result.failing_axes


class PlanningOnThisRank(Callback):
    """Writes what this rank's callback_metrics say after every validation run."""

    def __init__(self, directory):
        self.directory = directory

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        keys = ("planning_success", "planning_success_real", "passed", "min_axis")
        seen = {key: trainer.callback_metrics[f"simgate/{key}"].item() for key in keys}
        path = self.directory / f"rank{trainer.global_rank}-step{trainer.global_step}.json"
        path.write_text(json.dumps(seen))


def test_under_ddp_rank_zero_plans_and_every_rank_gets_the_same_scores_and_verdict(tmp_path):
    gate = _gate(threshold={"planning_success": 0.99}, planning_every_n_checks=1, batch_size=2)
    fit = trainer(
        tmp_path,
        [gate, PlanningOnThisRank(tmp_path)],
        max_epochs=1,
        strategy="ddp_spawn",
        devices=2,
        deterministic=False,
    )
    fit.fit(ToyWorldModel(), datamodule=_data())
    (report,) = _reports(tmp_path / "simgate")
    zero, one = (json.loads((tmp_path / f"rank{r}-step{report['step']}.json").read_text()) for r in (0, 1))
    assert zero == one
    assert zero["planning_success"] == pytest.approx(report["scores"]["planning_success"])
    assert zero["planning_success_real"] == report["extras"]["planning_success_real"] == 1.0
    assert zero["passed"] == 0.0 and report["passed"] is False


def test_the_demo_shows_decision_agreement_and_planning_success_beside_the_axes(tmp_path):
    printed = []
    run = run_demo(tmp_path, ["csv"], max_epochs=1, train_windows=32, progress_bar=False, write=printed.append)
    text = "\n".join(printed)
    scorecard = text[text.index("simulator gate: ") :]
    for name in ("controllability", "object_persistence", "task_validity", "decision_no_regret", "planning_success"):
        assert f"\n  {name} " in scorecard, name
    assert re.search(
        r"\n  planning: [0-4]/4 episodes reach the goal with the model, 4/4 with the real environment", text
    )
    assert run.last_check.planning is not None and run.last_check.planning.success_rate_real == 1.0


def test_simgate_report_prints_the_latest_planning_result_beside_the_axes(tmp_path, capsys):
    gate = SimulatorGate()
    planned = PlanningResult([True, False, False], [True, True, True], steps=[3, 8, 8], steps_real=[3, 4, 2])
    for step, planning in [(100, planned), (200, None)]:  # the latest check did not plan
        result = gate.evaluate(
            {"controllability": 0.9, "task_validity": 0.4, **(planning.scores() if planning else {})}
        )
        GateCheck(result, step, epoch=0, manifest_hash="ab12", planning=planning).write(tmp_path / "simgate")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    scorecard = out[out.index("simulator gate: FAIL (weakest axis: task_validity)") :]
    line = "  planning: 1/3 episodes reach the goal with the model, 3/3 with the real environment (step 100)"
    assert scorecard.index("  task_validity ") < scorecard.index(line)
