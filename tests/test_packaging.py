"""The built wheel, not only the editable checkout, installs and imports."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_imports(tmp_path):
    dist, target = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(dist.glob("simgate_tracking-*.whl"))
    assert len(wheels) == 1
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheels[0])],
        check=True,
        capture_output=True,
    )
    code = (
        "import simgate_tracking, pathlib;"
        f"assert pathlib.Path(simgate_tracking.__file__).is_relative_to(pathlib.Path(r'{target}'));"
        "from simgate_tracking import ProbeSet, SimulatorGate, GateResult, AXES;"
        "from simgate_tracking.metrics import (Controllability, TemporalConsistency, ObjectPersistence,"
        " ResetReproducibility, TaskValidity, VisualFidelity, SimulatorScorecard);"
        "print(len(AXES))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "5"
