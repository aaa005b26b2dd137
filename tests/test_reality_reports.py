"""Reality's own score (real takes of a stochastic world) in `simgate report` and in `simgate demo --stochastic`."""

import functools
import io
import json

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("tensorboard")

from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking import AXES, SimulatorGate
from simgate_tracking.cli import REALITY_NOTE, build_parser, main
from simgate_tracking.loggers.figures import REALITY_COLOUR
from simgate_tracking.report import GateCheck
from simgate_tracking.toy import demo as toy_demo

REALITY = {
    "controllability": 0.999,
    "temporal_consistency": 0.996,
    "object_persistence": 0.927,
    "reset_reproducibility": 1.0,
    "task_validity": 1.0,
}
DIMGRAY = (105, 105, 105)  # matplotlib's "dimgray": the curves' reality line


def _write_run(directory, real_baseline, steps=(100, 200)):
    gate = SimulatorGate()
    for epoch, step in enumerate(steps):
        scores = {axis: 0.5 + 0.1 * epoch for axis in AXES} | {"psnr": 20.0}
        GateCheck(gate.evaluate(scores, real_baseline=real_baseline), step, epoch, "ab12" * 16).write(directory)


def _near(pixels, colour, tol=2):
    return (np.abs(pixels[..., :3].astype(int) - np.asarray(colour)) <= tol).all(-1)


def test_report_prints_reality_beside_the_model_and_draws_its_line(tmp_path, capsys):
    _write_run(tmp_path / "takes" / "simgate", REALITY)
    _write_run(tmp_path / "one" / "simgate", None)
    takes_png, one_png = tmp_path / "takes.png", tmp_path / "one.png"
    assert main(["report", str(tmp_path / "takes"), "--png", str(takes_png)]) == 0
    out = capsys.readouterr().out
    assert "  object_persistence        0.600  > 0.65  (reality 0.927)" in out
    assert "  reset_reproducibility     0.600  > 0.65  (reality 1.000)" in out
    assert REALITY_NOTE in out
    assert main(["report", str(tmp_path / "one"), "--png", str(one_png)]) == 0
    out = capsys.readouterr().out
    assert (
        "(reality" not in out and REALITY_NOTE not in out
    )  # one real take: reality is its own reference, nothing to show
    takes, one = (np.asarray(Image.open(path).convert("RGB")) for path in (takes_png, one_png))
    assert Image.open(takes_png).format == "PNG" and takes.shape == one.shape
    # the dashed reality line (and its legend) in every panel: many more dim grey pixels than the one-take curves
    assert _near(takes, DIMGRAY).sum() > _near(one, DIMGRAY).sum() + 5 * 40


def test_report_reads_reports_written_before_real_takes(tmp_path, capsys):
    _write_run(tmp_path / "simgate", None)
    for path in (tmp_path / "simgate").glob("check-*.json"):  # an old report: no real_baseline key at all
        report = json.loads(path.read_text())
        del report["real_baseline"]
        path.write_text(json.dumps(report))
    assert main(["report", str(tmp_path), "--png", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "2 checks; latest at step 200" in out and "(reality" not in out and REALITY_NOTE not in out
    assert Image.open(tmp_path / "c.png").format == "PNG"


def test_report_keeps_the_reality_column_for_the_run_when_the_latest_check_lacks_it(tmp_path, capsys):
    _write_run(tmp_path / "simgate", REALITY, steps=(100,))
    _write_run(tmp_path / "simgate", None, steps=(200, 300))  # its latest check was scored on one take
    assert main(["report", str(tmp_path), "--png", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "  object_persistence        0.600  > 0.65  (reality 1.000)" in out
    assert REALITY_NOTE in out


def test_demo_command_line_takes_stochastic():
    assert build_parser().parse_args(["demo", "--stochastic"]).stochastic
    assert not build_parser().parse_args(["demo"]).stochastic


def test_stochastic_demo_logs_reality_below_1_beside_the_model(tmp_path, monkeypatch, capsys):
    # the command as a user runs it, on fewer training windows per epoch (the demo's own smallest test setting)
    monkeypatch.setattr(
        toy_demo, "run_demo", functools.partial(toy_demo.run_demo, train_windows=32, progress_bar=False)
    )
    assert main(["demo", "--stochastic", "--max-epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "x 4 real takes" in out
    assert out.count("(reality 0.927)") == 2  # object persistence, at both checks
    assert "Reality's own score (each of its 4 real takes held out against the others)" in out
    assert "planning: " in out  # the planning probe plays the stochastic world too
    run = tmp_path / "simgate-demo" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    reality = {axis: [e.value for e in events.Scalars(f"simgate/reality/{axis}")] for axis in AXES}
    assert all(len(values) == 2 and all(0.0 < v <= 1.0 for v in values) for values in reality.values())
    assert min(reality["object_persistence"]) < 0.95
    # at the step Lightning logs each validation run's metrics at, one before the reports' global steps 2 and 4
    assert [e.step for e in events.Scalars("simgate/reality/object_persistence")] == [1, 3]
    scorecard = events.Images("simgate/scorecard")[-1]
    pixels = np.asarray(Image.open(io.BytesIO(scorecard.encoded_image_string)).convert("RGB"))
    assert _near(pixels, tuple(int(REALITY_COLOUR[i : i + 2], 16) for i in (1, 3, 5)), tol=0).sum() > 5 * 20
    report = json.loads((run / "simgate" / "check-4.json").read_text())
    assert report["real_baseline"]["object_persistence"] == pytest.approx(reality["object_persistence"][-1])
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "(reality 0.927)" in out and REALITY_NOTE in out
    assert Image.open(run / "simgate-curves.png").format == "PNG"
