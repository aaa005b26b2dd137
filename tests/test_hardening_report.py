"""``simgate report`` and report files under bad input and faults: a line saying what went wrong, never a traceback."""

import json
import os
import subprocess
import sys

import pytest

from simgate_tracking import SimulatorGate
from simgate_tracking.cli import CURVES_PNG, main
from simgate_tracking.report import GateCheck, read_reports


def write_run(directory, steps=(100, 200)):
    for i, step in enumerate(steps):
        result = SimulatorGate().evaluate({"controllability": 0.5 + 0.1 * i, "temporal_consistency": 0.9})
        GateCheck(result, step, i, "ab12" * 16).write(directory)


def good_report(step):
    result = SimulatorGate().evaluate({"controllability": 0.7})
    return GateCheck(result, step, 0, "ab12").to_report()


BAD_FILES = {
    "truncated": lambda path: path.write_text(json.dumps(good_report(300))[:40]),
    "empty": lambda path: path.write_text(""),
    "binary": lambda path: path.write_bytes(bytes(range(256)) * 4),
    "list": lambda path: path.write_text("[1, 2, 3]"),
    "null score": lambda path: path.write_text(json.dumps({**good_report(300), "scores": {"controllability": None}})),
    "string step": lambda path: path.write_text(json.dumps({**good_report(300), "step": "300"})),
    "directory": lambda path: path.mkdir(),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_report_file_is_skipped_with_a_line_naming_it(tmp_path, capsys, kind):
    write_run(tmp_path)
    bad = tmp_path / ("check-500.json" if kind == "directory" else "check-300.json")
    BAD_FILES[kind](bad)
    assert main(["report", str(tmp_path), "--png", str(tmp_path / "out.png")]) == 0
    out, err = capsys.readouterr()
    assert "2 checks; latest at step 200" in out and "controllability" in out
    assert f"skipping {bad}" in err and "Traceback" not in err, err
    assert (tmp_path / "out.png").stat().st_size > 0


def test_read_reports_skips_bad_files_with_a_warning(tmp_path):
    write_run(tmp_path)
    (tmp_path / "check-300.json").write_text("{")
    with pytest.warns(UserWarning, match="check-300.json"):
        reports = read_reports(tmp_path)
    assert [r["step"] for r in reports] == [100, 200]


def test_only_bad_reports_exit_2_without_a_traceback(tmp_path, capsys):
    (tmp_path / "check-1.json").write_text("not json")
    assert main(["report", str(tmp_path)]) == 2
    assert "no readable gate reports" in capsys.readouterr().err


def test_a_report_of_a_gate_over_psnr_alone_is_printed_and_drawn(tmp_path, capsys):
    for step, psnr in [(10, 18.0), (20, 24.0)]:
        GateCheck(SimulatorGate(threshold={"psnr": 20.0}).evaluate({"psnr": psnr}), step, 0, "ab").write(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "psnr" in out and (tmp_path / CURVES_PNG).stat().st_size > 0


def test_extras_and_reality_written_as_null_are_read(tmp_path, capsys):
    report = {
        **good_report(5),
        "extras": {"delta_psnr": None, "psnr": 21.0},
        "real_baseline": {"controllability": None},
    }
    (tmp_path / "check-5.json").write_text(json.dumps(report))
    assert main(["report", str(tmp_path)]) == 0
    assert "delta_psnr" in capsys.readouterr().out


def test_png_that_cannot_be_written_is_said_after_the_scorecard(tmp_path, capsys):
    write_run(tmp_path / "run")
    (tmp_path / "file").write_text("")
    assert main(["report", str(tmp_path / "run"), "--png", str(tmp_path / "file" / "curves.png")]) == 1
    out, err = capsys.readouterr()
    assert "simulator gate:" in out and "Per-axis curves could not be written to" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_run_dir_says_the_png_could_not_be_written(tmp_path, capsys):
    write_run(tmp_path)
    tmp_path.chmod(0o555)
    try:
        assert main(["report", str(tmp_path)]) == 1
    finally:
        tmp_path.chmod(0o755)
    assert "could not be written" in capsys.readouterr().err


@pytest.mark.parametrize("slash", ["", "/"])
def test_png_onto_a_directory_writes_into_it_and_prints_the_true_path(tmp_path, capsys, slash):
    write_run(tmp_path / "run")
    folder = tmp_path / "pngs"
    if not slash:
        folder.mkdir()
    assert main(["report", str(tmp_path / "run"), "--png", f"{folder}{slash}"]) == 0
    shown = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("Per-axis curves: ")
    assert shown == str(folder / CURVES_PNG) and (folder / CURVES_PNG).read_bytes()[1:4] == b"PNG"


def test_report_into_a_closed_pipe_ends_quietly(tmp_path):
    write_run(tmp_path)
    read, write = os.pipe()
    code = "import sys; from simgate_tracking.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", code, "report", str(tmp_path), "--png", str(tmp_path / "c.png")]
    child = subprocess.Popen(args, stdout=write, stderr=subprocess.PIPE, cwd=tmp_path)
    os.close(write)
    os.close(read)  # the reader leaves before the report prints, as `| head` does after its lines
    _, err = child.communicate(timeout=120)
    assert b"BrokenPipeError" not in err and b"Traceback" not in err, err.decode()
    assert child.returncode == 1


@pytest.mark.parametrize("step", ["../../../x", "x/../../y", 1.5, True])
def test_a_report_never_writes_outside_its_directory(tmp_path, step):
    result = SimulatorGate().evaluate({"controllability": 0.7})
    inside = tmp_path / "a" / "b" / "c"
    with pytest.raises(ValueError, match="`step` to be an int"):
        GateCheck(result, step, 0, "ab").write(inside)
    with pytest.raises(ValueError, match="`prefix` to be a plain name"):
        GateCheck(result, 1, 0, "ab").write(inside, prefix="../../x")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_leaves_no_temporary_report(tmp_path):
    result = SimulatorGate().evaluate({"controllability": 0.7})
    (tmp_path / "check-7.json.tmp").symlink_to("/dev/full")  # every write to it fails with ENOSPC, as on a full disk
    with pytest.raises(OSError, match="No space left"):
        GateCheck(result, 7, 0, "ab").write(tmp_path)
    assert list(tmp_path.iterdir()) == []
