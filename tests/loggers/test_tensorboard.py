"""TensorBoardGateLogger against a real SummaryWriter, read back with TensorBoard's own EventAccumulator."""

import io
import re

import pytest

pytest.importorskip("PIL")
pytest.importorskip("tensorboard")

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from torch.utils.tensorboard import SummaryWriter

from simgate_tracking import AXES
from simgate_tracking.loggers import TensorBoardGateLogger, gate_scalars
from tests.helpers.dashboard_checks import STEPS, make_checks

KINDS = ("compressedHistograms", "images", "audio", "scalars", "histograms", "tensors")


@pytest.fixture(scope="module")
def checks():
    return make_checks()


def _log(path, checks, **options):
    writer = SummaryWriter(str(path))
    logger = TensorBoardGateLogger(writer, **options)
    for check in checks:
        logger.log_check(check)
    writer.close()
    events = EventAccumulator(str(path), size_guidance=dict.fromkeys(KINDS, 0))
    events.Reload()
    return events


def _text(events, tag):
    return {e.step: e.tensor_proto.string_val[0].decode() for e in events.Tensors(f"{tag}/text_summary")}


def test_scalars_at_each_check_step(tmp_path, checks):
    events = _log(tmp_path, checks, log_media=False)
    for key in gate_scalars(checks[0].result):
        logged = events.Scalars(key)
        assert [e.step for e in logged] == [100, 200, 300], key
        for event, check in zip(logged, checks, strict=True):
            assert event.value == pytest.approx(gate_scalars(check.result)[key], abs=1e-6), key
    assert [e.value for e in events.Scalars("simgate/passed")] == [1.0, 1.0, 0.0]
    assert events.Scalars("simgate/weakest_axis")[-1].value == AXES.index("object_persistence")
    assert not events.Tags()["images"]  # log_media=False


def test_custom_scalars_layout_puts_every_axis_and_the_threshold_on_one_chart(tmp_path, checks):
    events = _log(tmp_path, checks, log_media=False)
    (config,) = events.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    charts = {(cat.title, chart.title): list(chart.multiline.tag) for cat in layout.category for chart in cat.chart}
    scalar_tags = events.Tags()["scalars"]

    def shown(chart):
        return {tag for tag in scalar_tags if any(re.search(pattern, tag) for pattern in charts[chart])}

    thresholds = {f"simgate/threshold/{axis}" for axis in AXES}
    assert shown(("simulator gate", "axes vs threshold")) == {f"simgate/{axis}" for axis in AXES} | thresholds
    assert shown(("simulator gate", "weakest axis (min_axis)")) == {"simgate/min_axis"} | thresholds
    assert shown(("frame quality (not gated)", "PSNR (dB)")) == {"simgate/psnr"}
    assert shown(("frame quality (not gated)", "SSIM")) == {"simgate/ssim"}
    assert shown(("frame quality (not gated)", "delta-PSNR (dB)")) == {"simgate/delta_psnr"}


def test_rollouts_are_an_animated_gif_image_per_check(tmp_path, checks):
    events = _log(tmp_path, checks)
    images = events.Images("simgate/rollouts")
    assert [e.step for e in images] == [100, 200, 300]
    for event in images:
        gif = Image.open(io.BytesIO(event.encoded_image_string))
        assert gif.format == "GIF" and gif.n_frames == STEPS
        assert gif.size == (event.width, event.height)
        assert len(event.encoded_image_string) <= 2_000_000
    (chart,) = events.Images("simgate/scorecard")[-1:]
    assert Image.open(io.BytesIO(chart.encoded_image_string)).format == "PNG"


def test_alerts_verdict_and_episode_table_are_markdown_text(tmp_path, checks):
    events = _log(tmp_path, checks)
    alerts = _text(events, "simgate/alerts")
    assert list(alerts) == [300]  # only the check that raised alerts
    assert "**ERROR: simulator gate failed: object_persistence 0.000 <= 0.65**" in alerts[300]
    assert "at step 300: object_persistence = 0.000 (threshold 0.65" in alerts[300]
    verdicts = _text(events, "simgate/verdict")
    assert verdicts[300].startswith("**step 300: FAIL, weakest object_persistence 0.000 (threshold 0.65)**")
    assert "| object_persistence | 0.000 | 0.650 | FAIL (weakest) |" in verdicts[300]
    assert "| psnr |" in verdicts[300] and "not gated" in verdicts[300]
    table = _text(events, "simgate/episodes")[300].splitlines()
    assert (
        table[0] == "| episode | controllability | temporal_consistency | object_persistence | reset_reproducibility |"
    )
    assert len(table) == 2 + 4 and table[3].startswith("| 1 | ")
    assert table[3].split(" | ")[3] == f"{checks[-1].episode_scores['object_persistence'][1]:.3f}"


def test_a_video_over_budget_is_shrunk_to_fit(tmp_path, checks):
    events = _log(tmp_path, checks[:1], max_media_bytes=60_000)
    (event,) = events.Images("simgate/rollouts")
    gif = Image.open(io.BytesIO(event.encoded_image_string))
    assert len(event.encoded_image_string) <= 60_000
    full = _log(tmp_path / "full", checks[:1]).Images("simgate/rollouts")[0]
    assert len(full.encoded_image_string) > 60_000
    assert gif.n_frames * gif.size[0] * gif.size[1] < STEPS * full.width * full.height


def test_a_video_that_cannot_fit_is_skipped_with_a_warning_and_the_rest_is_logged(tmp_path, checks):
    with pytest.warns(UserWarning, match="Rollout GIF skipped at step 100: Expected the rollout video to fit"):
        events = _log(tmp_path, checks[:1], max_media_bytes=500)
    assert "simgate/rollouts" not in events.Tags()["images"]
    assert [e.step for e in events.Scalars("simgate/min_axis")] == [100]
    assert [e.step for e in events.Images("simgate/scorecard")] == [100]


def test_bad_writer_or_options_raise_naming_the_argument(tmp_path):
    with pytest.raises(ValueError, match="`writer` to be a torch.utils.tensorboard.SummaryWriter but got str"):
        TensorBoardGateLogger("runs/")
    writer = SummaryWriter(str(tmp_path))
    with pytest.raises(ValueError, match="`fps` to be a positive number but got 0"):
        TensorBoardGateLogger(writer, fps=0)
    with pytest.raises(ValueError, match="`max_media_bytes` to be a positive int but got -1"):
        TensorBoardGateLogger(writer, max_media_bytes=-1)
    writer.close()
