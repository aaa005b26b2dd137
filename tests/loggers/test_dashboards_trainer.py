"""The dashboards end to end: a real Trainer with the gate callback, W&B (offline), TensorBoard and CSV loggers."""

import csv
import io
import re

import lightning.pytorch as pl
import pytest

pytest.importorskip("wandb")
pytest.importorskip("PIL")
pytest.importorskip("tensorboard")

import torch
import wandb
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from simgate_tracking import AXES, ProbeSet
from simgate_tracking.callbacks import SimulatorGateCallback
from tests.helpers.wandb_reader import history_rows, read_finished_run, run_file

C, H, W, A, T = 3, 8, 8, 2, 4
BATCHES_PER_EPOCH = 4
TRUE_WEIGHTS = torch.randn(A, C * H * W, generator=torch.Generator().manual_seed(0)) * 0.05


def simulate(context: Tensor, actions: Tensor, weights: Tensor) -> Tensor:
    """Each action component pushes the frame along a fixed direction: (B, 1, C, H, W), (B, T, A) -> (B, T, ...)."""
    drift = actions.cumsum(dim=1) @ weights
    return (context.flatten(2) + drift).clamp(0, 1).view(actions.shape[0], actions.shape[1], C, H, W)


class TinyWorldModel(pl.LightningModule):
    """Learns the action directions; untrained (zeros) it ignores actions and fails controllability."""

    def __init__(self, log_loss: bool = True) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(A, C * H * W))
        self.log_loss = log_loss

    def rollout(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        return simulate(context, actions, self.weights)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        context, actions, future = batch
        loss = (self.rollout(context, actions) - future).square().mean() * 1000
        if self.log_loss:
            self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        context, actions, future = batch
        if self.log_loss:
            self.log("val_mse", (self.rollout(context, actions) - future).square().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.002)


def _windows(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    context = 0.25 + 0.5 * torch.rand(n, 1, C, H, W, generator=g)
    actions = torch.randn(n, T, A, generator=g)
    return TensorDataset(context, actions, simulate(context, actions, TRUE_WEIGHTS))


def _probe_set() -> ProbeSet:
    g = torch.Generator().manual_seed(1)
    context = 0.25 + 0.5 * torch.rand(4, 1, C, H, W, generator=g)
    actions = torch.randn(4, 3, T, A, generator=g)
    targets = torch.stack([simulate(context, actions[:, k], TRUE_WEIGHTS) for k in range(3)], dim=1)
    return ProbeSet(context=context, actions=actions, targets=targets, name="drift")


def _fit(tmp_path, loggers, callbacks, model):
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        max_epochs=2,
        logger=loggers,
        callbacks=callbacks,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        limit_val_batches=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    data = DataLoader(_windows(16 * BATCHES_PER_EPOCH, seed=2), batch_size=16)
    trainer.fit(model, data, DataLoader(_windows(4, seed=3), batch_size=4))
    return trainer


def _tensorboard(log_dir):
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_a_training_run_fills_every_dashboard_on_the_training_step_axis(tmp_path):
    wandb_logger = WandbLogger(save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True))
    tensorboard, csv_logger = TensorBoardLogger(tmp_path, name="tb"), CSVLogger(tmp_path, name="csv")
    gate = SimulatorGateCallback(_probe_set(), batch_size=4, num_sample_episodes=2)
    _fit(tmp_path, [wandb_logger, tensorboard, csv_logger], [gate], TinyWorldModel())
    wandb_logger.experiment.finish()
    global_steps = [BATCHES_PER_EPOCH, 2 * BATCHES_PER_EPOCH]  # the checks' training steps: reports and captions
    steps = [step - 1 for step in global_steps]  # where Lightning logs each validation run's own metrics
    assert not gate.history[0].passed and gate.history[-1].passed  # the curves have something to show

    rows = history_rows(read_finished_run(tmp_path))
    checks = [row for row in rows if "simgate/min_axis" in row]
    assert [row["trainer/global_step"] for row in checks] == steps
    assert [row["simgate/min_axis"] for row in checks] == pytest.approx([r.min_axis for r in gate.history])
    assert any("train_loss" in row for row in rows)  # Lightning's own curves share the step axis
    assert [row["trainer/global_step"] for row in rows if "val_mse" in row] == steps  # the same x as the gate's
    video = run_file(tmp_path).parent / "files" / checks[-1]["simgate/rollouts"]["path"]
    # the model passes on its point scores; with few probe episodes its intervals may still hold a threshold
    caption = checks[-1]["simgate/rollouts"]["caption"]
    assert video.is_file() and re.match(rf"step {global_steps[-1]}: (PASS|INCONCLUSIVE), weakest ", caption)

    events = _tensorboard(tensorboard.log_dir)
    assert [e.step for e in events.Scalars("val_mse")] == steps
    assert [e.step for e in events.Scalars("simgate/min_axis")] == steps
    assert [e.step for e in events.Scalars("simgate/controllability")] == steps
    gifs = events.Images("simgate/rollouts")
    assert [Image.open(io.BytesIO(e.encoded_image_string)).n_frames for e in gifs] == [T, T]
    assert "custom_scalars__config__" in events.Tags()["tensors"]
    # the first check failed: an alert at its step; a later check alerts only if its verdict is inconclusive
    alert, *later = events.Tensors("simgate/alerts/text_summary")
    inconclusive = [s for s, r in zip(steps[1:], gate.history[1:], strict=True) if r.verdict == "inconclusive"]
    assert [e.step for e in later] == inconclusive
    weakest = gate.history[0].weakest_axis
    assert alert.step == steps[0]
    assert f"simulator gate failed at step {global_steps[0]}: {weakest} = " in alert.tensor_proto.string_val[0].decode()

    with open(f"{csv_logger.log_dir}/metrics.csv") as handle:
        table = list(csv.DictReader(handle))
    logged = [row for row in table if row.get("simgate/min_axis")]
    assert [int(row["step"]) for row in logged] == steps  # the rows of Lightning's own validation metrics
    assert [int(row["step"]) for row in table if row.get("val_mse")] == steps
    assert [int(row["epoch"]) for row in logged] == [0, 1]


class WandbGoesDown(Callback):
    """The W&B run ends under the Trainer's feet, as when its connection dies: every later call raises."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.loggers[0].experiment.finish()


def test_a_dashboard_that_fails_warns_once_and_training_goes_on(tmp_path):
    wandb_logger = WandbLogger(save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True))
    tensorboard = TensorBoardLogger(tmp_path, name="tb")
    gate = SimulatorGateCallback(_probe_set(), batch_size=4, num_sample_episodes=1)
    with pytest.warns(UserWarning) as caught:
        trainer = _fit(tmp_path, [wandb_logger, tensorboard], [WandbGoesDown(), gate], TinyWorldModel(log_loss=False))
    failures = [str(w.message) for w in caught if "WandbGateLogger" in str(w.message)]
    assert len(failures) == 1 and "switched off" in failures[0] and "UsageError" in failures[0]
    assert trainer.global_step == 2 * BATCHES_PER_EPOCH and len(gate.history) == 2
    for axis in ("controllability", "temporal_consistency", "reset_reproducibility"):
        assert trainer.callback_metrics[f"simgate/{axis}"].item() == pytest.approx(gate.history[-1].scores[axis])
    assert trainer.callback_metrics["simgate/weakest_axis"].item() == AXES.index(gate.history[-1].weakest_axis)
    events = _tensorboard(tensorboard.log_dir)
    assert [e.step for e in events.Scalars("simgate/min_axis")] == [BATCHES_PER_EPOCH - 1, 2 * BATCHES_PER_EPOCH - 1]
