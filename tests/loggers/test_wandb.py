"""WandbGateLogger against a real offline W&B run, read back from its run-*.wandb file and media files."""

import json

import pytest

pytest.importorskip("wandb")
pytest.importorskip("PIL")

import wandb
from PIL import Image

from simgate_tracking import AXES
from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.loggers import WandbGateLogger, gate_scalars
from tests.helpers.dashboard_checks import STEPS, make_checks
from tests.helpers.wandb_reader import history_rows, of_type, read_finished_run, run_file


@pytest.fixture
def run(tmp_path):
    run = wandb.init(project="simgate-tests", mode="offline", dir=tmp_path, settings=wandb.Settings(silent=True))
    yield run
    run.finish()


def _gate_rows(tmp_path):
    records = read_finished_run(tmp_path)
    return records, [row for row in history_rows(records) if "simgate/min_axis" in row]


@pytest.mark.parametrize("step_metric", ["trainer/global_step", "global_step"])
def test_curves_land_on_the_training_step_axis(run, tmp_path, step_metric):
    checks = make_checks()
    logger = WandbGateLogger(run, step_metric=step_metric, log_media=False)
    for i, check in enumerate(checks):
        run.log({"train_loss": 1.0 / (i + 1), step_metric: check.step - 50})  # the user's own curve, same axis
        logger.log_check(check)
    run.finish()
    records, rows = _gate_rows(tmp_path)
    assert [row[step_metric] for row in rows] == [100, 200, 300]
    for row, check in zip(rows, checks, strict=True):
        for key, value in gate_scalars(check.result).items():
            assert row[key] == pytest.approx(value), key
    assert rows[-1]["simgate/passed"] == 0 and rows[0]["simgate/passed"] == 1
    assert rows[-1]["simgate/weakest_axis"] == AXES.index("object_persistence")
    metrics = {m.name or m.glob_name: m for m in of_type(records, "metric")}
    for axis in [*AXES, "min_axis"]:
        metric = metrics[f"simgate/{axis}"]
        assert metric.step_metric == step_metric
        assert metric.summary.min and metric.summary.last
    assert metrics["simgate/*"].step_metric == step_metric


@pytest.mark.parametrize("video_format", ["gif", "mp4"])
def test_rollout_video_table_and_scorecard_are_logged_as_files(run, tmp_path, video_format):
    ffmpeg = pytest.importorskip("imageio_ffmpeg") if video_format == "mp4" else None
    check = make_checks(steps=(100,))[0]
    WandbGateLogger(run, video_format=video_format).log_check(check)
    run.finish()
    _, (row,) = _gate_rows(tmp_path)
    files = run_file(tmp_path).parent / "files"
    assert row["simgate/rollouts"]["_type"] == "video-file"
    assert row["simgate/rollouts"]["caption"] == "step 100: PASS, weakest temporal_consistency 0.989 (threshold 0.65)"
    video = files / row["simgate/rollouts"]["path"]
    assert video.suffix == f".{video_format}" and video.stat().st_size <= 2_000_000
    if video_format == "gif":
        assert Image.open(video).n_frames == STEPS
    else:
        assert ffmpeg.count_frames_and_secs(str(video))[0] == STEPS
    assert row["simgate/scorecard"]["_type"] == "image-file"
    assert (files / row["simgate/scorecard"]["path"]).is_file()
    table = json.loads((files / row["simgate/episodes"]["path"]).read_text())
    assert table["columns"] == [
        "episode",
        "controllability",
        "temporal_consistency",
        "object_persistence",
        "reset_reproducibility",
    ]
    assert [r[0] for r in table["data"]] == [0, 1, 2, 3]
    assert table["data"][1][3] == pytest.approx(check.episode_scores["object_persistence"][1])


def test_alerts_name_axis_score_threshold_and_step_once_per_axis(run, tmp_path):
    logger = WandbGateLogger(run, log_media=False)
    checks = make_checks()
    for check in checks:
        logger.log_check(check)
    run.finish()
    alerts = of_type(read_finished_run(tmp_path), "alert")
    assert checks[0].alerts == checks[1].alerts == ()
    # five alerts on three axes at step 300: one notification per axis, its other alerts ride along in the text
    assert len(checks[-1].alerts) == 5
    by_level = sorted((a.level, a.title) for a in alerts)
    assert [level for level, _ in by_level] == ["ERROR", "WARN", "WARN"]
    error = next(a for a in alerts if a.level == "ERROR")
    assert error.title == "simulator gate failed: object_persistence 0.000 <= 0.65"
    assert "simulator gate failed at step 300: object_persistence = 0.000 (threshold 0.65" in error.text
    assert "object_persistence fell below its best at step 300" in error.text
    warned = {title.split(" fell ")[0] for level, title in by_level if level == "WARN"}
    assert warned == {"controllability", "temporal_consistency"}
    assert all("at step 300" in a.text and "(threshold 0.65" in a.text for a in alerts)


@pytest.mark.parametrize(("alert_wait_s", "expected"), [(3600.0, 1), (0.0, 3)])
def test_alerts_are_rate_limited_per_axis(run, tmp_path, alert_wait_s, expected):
    # a policy without cooldown raises "gate failed" at every failing check; the logger limits W&B notifications
    checks = make_checks(vanish_at=(100, 200, 300), policy=AlertPolicy(cooldown_checks=0))
    logger = WandbGateLogger(run, log_media=False, alert_wait_s=alert_wait_s)
    for check in checks:
        logger.log_check(check)
    run.finish()
    alerts = of_type(read_finished_run(tmp_path), "alert")
    persistence = [a for a in alerts if a.title.startswith("simulator gate failed: object_persistence")]
    assert len(persistence) == expected


def test_bad_arguments_raise_naming_the_argument(run):
    with pytest.raises(ValueError, match="`run` to be a W&B run"):
        WandbGateLogger(object())
    with pytest.raises(ValueError, match="`step_metric` to be a non-empty str but got ''"):
        WandbGateLogger(run, step_metric="")
    with pytest.raises(ValueError, match="`max_media_bytes` to be a positive int but got 0"):
        WandbGateLogger(run, max_media_bytes=0)
    with pytest.raises(ValueError, match="`video_format` to be 'gif', 'mp4' or None but got 'avi'"):
        WandbGateLogger(run, video_format="avi")
