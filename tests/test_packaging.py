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
        "import torch; from simgate_tracking.functional import _fused; _fused.KERNEL_MIN_VALUES = 0;"
        "from simgate_tracking.functional._fused import compiled_kernel;"
        "real = torch.rand(2, 2, 3, 3, 8, 8); card = SimulatorScorecard(); card.update(real, real, second=real[:, 0]);"
        "assert compiled_kernel() is not None and float(card.compute()['controllability']) == 1.0;"
        "print(len(AXES))"
    )
    # the CPU kernel ships in the wheel, numba is declared as the `cpu-kernel` extra (not a core dependency), and
    # the kernel compiles where the wheel was installed
    metadata = next(target.glob("simgate_tracking-*.dist-info")) / "METADATA"
    numba = [line for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist: numba")]
    assert numba and all('extra == "cpu-kernel"' in line for line in numba), numba
    env = {"PYTHONPATH": str(target), "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "5"
