"""A broken dashboard warns once and is skipped; only rank zero writes; optional dependencies stay optional."""

import importlib
import re
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("wandb")
pytest.importorskip("tensorboard")

import wandb
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from simgate_tracking.loggers import (
    TensorBoardGateLogger,
    WandbGateLogger,
    encode_video,
    gate_loggers_for,
    safe_log,
    scorecard_figure,
)
from tests.helpers.dashboard_checks import make_checks

FRAMES = np.zeros((2, 8, 8, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def checks():
    return make_checks(steps=(100, 200))


def _scalar_steps(path, tag="simgate/min_axis"):
    events = EventAccumulator(str(path))
    events.Reload()
    return [e.step for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def test_a_logger_that_raises_warns_once_and_the_others_keep_logging(tmp_path, checks):
    run = wandb.init(mode="offline", dir=tmp_path, settings=wandb.Settings(silent=True))
    run.finish()  # W&B now refuses every call, as a dead connection would
    writer = SummaryWriter(str(tmp_path / "tb"))
    dead, alive = WandbGateLogger(run, log_media=False), TensorBoardGateLogger(writer, log_media=False)
    with pytest.warns(
        UserWarning, match=r"WandbGateLogger failed at step 100 and is switched off: UsageError: .*finished"
    ):
        loggers = safe_log([dead, alive], checks[0])
    assert loggers == [alive]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning: the dead logger is not called again
        loggers = safe_log(loggers, checks[1])
    writer.close()
    assert loggers == [alive]
    assert _scalar_steps(tmp_path / "tb") == [100, 200]


def test_only_rank_zero_writes(tmp_path, checks, monkeypatch):
    writer = SummaryWriter(str(tmp_path))
    logger = TensorBoardGateLogger(writer, log_media=False)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger.log_check(checks[0])
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    logger.log_check(checks[1])
    writer.close()
    assert _scalar_steps(tmp_path) == [200]


def test_gate_loggers_for_wraps_the_trainers_wandb_and_tensorboard_loggers(tmp_path):
    csv, tensorboard = CSVLogger(tmp_path), TensorBoardLogger(tmp_path)
    wandb_logger = WandbLogger(save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True))
    trainer = Trainer(
        default_root_dir=tmp_path,
        logger=[csv, wandb_logger, tensorboard],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        found = gate_loggers_for(trainer, log_media=False)
        assert [type(g) for g in found] == [WandbGateLogger, TensorBoardGateLogger]
        assert [g.lightning_logger for g in found] == [wandb_logger, tensorboard]
        assert found[0].run is wandb_logger.experiment and found[0].step_metric == "trainer/global_step"
        assert found[1].writer is tensorboard.experiment and not found[1].log_media
        only_csv = Trainer(default_root_dir=tmp_path, logger=[csv], enable_progress_bar=False)
        assert gate_loggers_for(only_csv) == []
    finally:
        wandb_logger.experiment.finish()


@pytest.mark.parametrize(
    ("module", "make", "extra"),
    [
        ("wandb", lambda: WandbGateLogger(object()), "simgate-tracking[wandb]"),
        (
            "tensorboard.compat.proto.summary_pb2",
            lambda: TensorBoardGateLogger(object()),
            "simgate-tracking[tensorboard]",
        ),
        ("PIL", lambda: encode_video(FRAMES, "gif"), "simgate-tracking[media]"),
        ("matplotlib.figure", lambda: scorecard_figure(make_checks(steps=(1,))[0]), "simgate-tracking[media]"),
        ("imageio_ffmpeg", lambda: encode_video(FRAMES, "mp4"), "pip install imageio-ffmpeg"),
    ],
)
def test_a_missing_optional_dependency_names_what_to_install(module, make, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModuleNotFoundError, match=re.escape(extra)):
        make()


def test_without_media_packages_a_logger_warns_once_and_logs_scalars(tmp_path, checks, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    writer = SummaryWriter(str(tmp_path))
    with pytest.warns(UserWarning, match=r"logs no rollout videos .*PIL.*simgate-tracking\[media\]"):
        logger = TensorBoardGateLogger(writer)
    logger.log_check(checks[0])
    writer.close()
    assert not logger.log_media and _scalar_steps(tmp_path) == [100]


def test_without_matplotlib_the_dashboards_still_get_their_pictures(tmp_path, checks, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the scorecard picture is drawn with Pillow alone
    writer = SummaryWriter(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger = TensorBoardGateLogger(writer)
    logger.log_check(checks[0])
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    assert logger.log_media and "simgate/scorecard" in events.Tags()["images"]


def test_the_loggers_import_without_wandb_or_tensorboard(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("simgate_tracking.loggers")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("wandb", "tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)
    loggers = importlib.import_module("simgate_tracking.loggers")
    assert loggers.WandbGateLogger.__name__ == "WandbGateLogger"
