"""`simgate demo` and `simgate report`, run as a user runs them: dashboards, reports and curves read back from disk."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL")
pytest.importorskip("tensorboard")
pytest.importorskip("wandb")

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import AXES, SimulatorGate
from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.cli import main
from simgate_tracking.report import GateCheck
from simgate_tracking.toy.demo import run_demo, wandb_logged_in
from tests.helpers.wandb_reader import history_rows, read_finished_run

SCRIPT = Path(sys.executable).parent / "simgate"  # the console script pyproject.toml declares


def _simgate(*args, cwd):
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "simgate_tracking.cli"]
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One short demo run, as the README tells a newcomer to start it (TensorBoard under runs/ by default)."""
    cwd = tmp_path_factory.mktemp("demo")
    proc = _simgate("demo", "--max-epochs", "2", "--out", "runs", cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return cwd, proc.stdout


def test_demo_prints_a_scorecard_at_every_check_and_the_final_verdict(demo):
    _, out = demo
    assert "check 1 (epoch 0, step 64)" in out and "check 2 (epoch 1, step 128)" in out
    assert out.count("simulator gate: FAIL") == 2  # an untrained model is no simulator yet
    assert "ALERT ERROR: simulator gate failed" in out
    assert "Final verdict after 2 checks: FAIL" in out
    assert "tensorboard --logdir runs" in out
    assert "simgate report runs/simgate-demo/version_0" in out


def test_demo_leaves_tensorboard_curves_of_every_axis_a_rollout_gif_and_an_alert(demo):
    cwd, _ = demo
    run = cwd / "runs" / "simgate-demo" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    for axis in AXES:  # where Lightning logs each validation run's metrics: one step before global steps 64 and 128
        assert [e.step for e in events.Scalars(f"simgate/{axis}")] == [63, 127], axis
        assert all(0.0 <= e.value <= 1.0 for e in events.Scalars(f"simgate/{axis}"))
    gifs = events.Images("simgate/rollouts")
    assert [e.step for e in gifs] == [63, 127]
    assert gifs[0].encoded_image_string[:4] == b"GIF8"
    assert Image.open(io.BytesIO(gifs[0].encoded_image_string)).n_frames == 10  # one frame per probe step
    alerts = [e.tensor_proto.string_val[0].decode() for e in events.Tensors("simgate/alerts/text_summary")]
    assert alerts and "simulator gate failed at step 64" in alerts[0]
    reports = sorted((run / "simgate").glob("check-*.json"))
    assert [path.name for path in reports] == ["check-128.json", "check-64.json"]
    assert list((run / "checkpoints").glob("gate-best-*.ckpt"))  # checkpoint selection on the weakest axis


def test_report_prints_the_latest_scorecard_and_draws_the_curves(demo):
    cwd, _ = demo
    proc = _simgate("report", "runs", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    latest = json.loads((cwd / "runs/simgate-demo/version_0/simgate/check-128.json").read_text())
    assert "2 checks; latest at step 128 (epoch 1)" in proc.stdout
    assert f"simulator gate: FAIL (weakest axis: {latest['weakest_axis']})" in proc.stdout
    assert f"controllability           {latest['scores']['controllability']:.3f}" in proc.stdout
    png = Image.open(cwd / "runs" / "simgate-curves.png")
    assert png.format == "PNG" and png.size[0] > 4 * png.size[1]  # one panel per axis, side by side


def _write_checks(directory, min_axes):
    policy, gate = AlertPolicy(), SimulatorGate()
    for i, score in enumerate(min_axes):
        result = gate.evaluate({axis: 0.9 for axis in AXES} | {"object_persistence": score, "psnr": 24.0})
        step = 100 * (i + 1)
        GateCheck(result, step, i, "ab12" * 16, alerts=tuple(policy.update(result, step))).write(directory)


def test_report_reads_the_newest_run_and_names_its_alerts(tmp_path, capsys):
    _write_checks(tmp_path / "old" / "simgate", [0.9])
    _write_checks(tmp_path / "new" / "simgate", [0.9, 0.95, 0.4])
    os.utime(tmp_path / "old" / "simgate", (0, 0))
    png = tmp_path / "curves" / "out.png"
    assert main(["report", str(tmp_path), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "2 runs under" in out and "reading the latest" in out
    assert "3 checks; latest at step 300 (epoch 2)" in out
    assert "simulator gate: FAIL (weakest axis: object_persistence)" in out
    assert "ALERT ERROR: simulator gate failed: object_persistence 0.400 <= 0.65" in out
    assert "ALERT WARN: object_persistence fell 0.550 below its best" in out
    assert Image.open(png).format == "PNG"


@pytest.mark.parametrize(("make", "message"), [(lambda p: p / "missing", "does not exist"), (lambda p: p, "no gate")])
def test_report_says_what_is_missing(tmp_path, capsys, make, message):
    assert main(["report", str(make(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def test_demo_logs_to_wandb_offline_and_csv_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    run = run_demo(tmp_path, ["wandb", "csv"], max_epochs=1, train_windows=32, progress_bar=False, write=str)
    assert run.logger_dirs["wandb"].name.startswith("offline-run-")
    rows = [row for row in history_rows(read_finished_run(tmp_path)) if "simgate/min_axis" in row]
    assert [row["trainer/global_step"] for row in rows] == [1]  # Lightning's x for that validation run
    assert rows[0]["simgate/min_axis"] == pytest.approx(run.result.min_axis)
    assert "simgate/min_axis" in (run.logger_dirs["csv"] / "metrics.csv").read_text().splitlines()[0]


def test_wandb_counts_as_logged_in_with_a_key_or_a_netrc_entry(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not wandb_logged_in()
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    netrc.chmod(0o600)
    assert wandb_logged_in()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    assert wandb_logged_in()


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["demo", "--max-epochs", "0"], "expected a positive int"), (["demo", "--logger", "mlflow"], "invalid choice")],
)
def test_bad_command_lines_are_refused_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
