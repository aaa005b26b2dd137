"""One failing media or alert call drops only that part: the curves keep coming and the part comes back after a wait."""

import errno
import warnings

import pytest

pytest.importorskip("wandb")
pytest.importorskip("PIL")
pytest.importorskip("tensorboard")

import wandb
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.loggers import TensorBoardGateLogger, WandbGateLogger, safe_log
from tests.helpers.dashboard_checks import make_checks
from tests.helpers.tiny_world import TinyWorldModel, make_probe_set, trainer
from tests.helpers.wandb_reader import history_rows, read_finished_run

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


def _failing(target, method, failures, error, calls):
    """Make ``target.method`` raise ``error`` on its first ``failures`` calls, then do its real work."""
    original = getattr(target, method)

    def flaky(*args, **kwargs):
        calls.append((args, kwargs))
        if len(calls) <= failures:
            raise error
        return original(*args, **kwargs)

    setattr(target, method, flaky)


class FailsOnce(Callback):
    """Once training starts, the W&B run's first alert and the TensorBoard writer's first image fail."""

    def __init__(self):
        self.alerts, self.images = [], []

    def on_train_start(self, trainer, pl_module):
        wandb_logger, tensorboard = trainer.loggers
        _failing(wandb_logger.experiment, "alert", 1, wandb.errors.CommError("alert service unreachable"), self.alerts)
        _failing(tensorboard.experiment, "add_image", 1, DISK_FULL, self.images)


def _events(path):
    events = EventAccumulator(str(path), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_a_failing_alert_or_image_drops_only_that_part_in_a_training_run(tmp_path):
    wandb_logger = WandbLogger(save_dir=tmp_path, offline=True, settings=wandb.Settings(silent=True))
    tensorboard = TensorBoardLogger(tmp_path, name="tb")
    # a model that never learns fails every check, and every failure alerts
    gate = SimulatorGateCallback(make_probe_set(), num_sample_episodes=1, alert_policy=AlertPolicy(cooldown_checks=0))
    faults = FailsOnce()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(tmp_path, [faults, gate], max_epochs=5, logger=[wandb_logger, tensorboard], log_every_n_steps=1)
        fit.fit(TinyWorldModel(lr=0.0))
    wandb_logger.experiment.finish()
    messages = [str(w.message) for w in caught]
    steps = [4 * (i + 1) for i in range(5)]  # the checks' training steps
    assert len(gate.history) == 5 and not any(r.passed for r in gate.history)
    assert not any("switched off" in m for m in messages)
    assert [m for m in messages if "alerts failed" in m] == [
        "WandbGateLogger: alerts failed at step 4 (CommError: alert service unreachable); the curves go on, alerts "
        "skipped at the next 1 check(s), then tried again"
    ]
    assert [m for m in messages if "media failed" in m] == [
        "TensorBoardGateLogger: media failed at step 4 (OSError: [Errno 28] No space left on device); the curves "
        "go on, media skipped at the next 1 check(s), then tried again"
    ]

    # W&B: every check's curves arrive; the alert failed at the first check, was skipped at the second, sent at the
    # third (later ones wait out W&B's alert_wait_s for the same axis)
    rows = [row for row in history_rows(read_finished_run(tmp_path)) if "simgate/min_axis" in row]
    assert [row["simgate/min_axis"] for row in rows] == pytest.approx([r.min_axis for r in gate.history])
    assert all("simgate/scorecard" in row for row in rows)  # W&B's media did not fail
    alert_steps = [int(kwargs["text"].split(" at step ")[1].split(":")[0]) for _, kwargs in faults.alerts]
    assert alert_steps == [steps[0], steps[2]]

    # TensorBoard: every check's curves and alerts; images from the third check on
    events = _events(tensorboard.log_dir)
    scalar_steps = [e.step for e in events.Scalars("simgate/min_axis")]
    assert len(scalar_steps) == 5
    assert [e.step for e in events.Tensors("simgate/alerts/text_summary")] == scalar_steps
    assert [e.step for e in events.Images("simgate/scorecard")] == scalar_steps[2:]
    assert [e.step for e in events.Images("simgate/rollouts")] == scalar_steps[2:]
    assert len(faults.images) == 4  # tried at checks 1, 3, 4, 5


@pytest.fixture(scope="module")
def checks():
    return make_checks(steps=tuple(range(100, 800, 100)))


def test_a_part_that_keeps_failing_backs_off_doubling_and_comes_back(tmp_path, checks):
    writer = SummaryWriter(str(tmp_path))
    logger, calls = TensorBoardGateLogger(writer), []
    _failing(writer, "add_image", 2, DISK_FULL, calls)
    loggers = [logger]
    with pytest.warns(UserWarning, match="media failed") as caught:
        for check in checks:
            loggers = safe_log(loggers, check)
    writer.close()
    assert loggers == [logger]
    skipped = [str(w.message).split("skipped at the next ")[1][0] for w in caught if "media failed" in str(w.message)]
    assert skipped == ["1", "2"]  # failed at checks 1 and 3, tried again at check 6
    events = _events(tmp_path)
    assert [e.step for e in events.Scalars("simgate/min_axis")] == [c.step for c in checks]
    assert [e.step for e in events.Images("simgate/scorecard")] == [checks[5].step, checks[6].step]


def test_a_wandb_row_whose_media_cannot_be_written_is_logged_without_them(tmp_path, checks):
    run = wandb.init(mode="offline", dir=tmp_path, settings=wandb.Settings(silent=True))
    logger, calls = WandbGateLogger(run), []
    original = run.log

    def log(row, *args, **kwargs):  # the media files of the first check hit a full disk
        calls.append(sorted(row))
        if "simgate/scorecard" in row and len([c for c in calls if "simgate/scorecard" in c]) == 1:
            raise DISK_FULL
        return original(row, *args, **kwargs)

    run.log = log
    with pytest.warns(UserWarning, match=r"WandbGateLogger: media failed at step 100 \(OSError"):
        assert safe_log([logger], checks[0]) == [logger]
    for check in checks[1:3]:
        safe_log([logger], check)
    run.finish()
    rows = [row for row in history_rows(read_finished_run(tmp_path)) if "simgate/min_axis" in row]
    assert [row["simgate/min_axis"] for row in rows] == pytest.approx([c.result.min_axis for c in checks[:3]])
    assert ["simgate/scorecard" in row for row in rows] == [False, False, True]
