"""Imports point one way: down the layers of DESIGN.md's data flow, never back up; private names stay home.

The data flow is probe set -> rollouts -> metric states -> GateResult -> loggers / early stopping. The layers below
are that flow as the imports really run, lowest first. A module may import its own layer and any layer below it.

- The gate's verdict (``gate``, ``confidence``, ``bootstrap``) and the records of a check (``report``, ``alerts``,
  ``plotting``, and ``planning.result``) hold no tensors maths and no Lightning: they sit below the metrics, whose
  ``plot()`` draws a verdict.
- ``rollout`` and ``evaluate`` run a world model over a probe set into the metrics and judge the scores.
- Real environments (``probes``) and the planning probe built on them sit above the callback, which needs only
  ``planning.result``; the toy world and its demo use everything; the command line sits on top.

Every import counts: module level, inside functions, and under ``TYPE_CHECKING``. Old import paths kept so that
existing code runs (``SHIMS``) re-export from wherever a name moved, and are checked by their own tests instead.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "simgate_tracking"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

LAYERS: tuple[tuple[str, ...], ...] = (
    ("_utils",),
    ("functional", "value_range"),
    ("_probe_checks", "probe_file", "probe_identity", "probe_batch", "probe", "probe_writer"),
    ("gate", "confidence", "bootstrap"),
    ("alerts", "report", "plotting", "planning.result"),
    ("metrics",),
    # "": the package itself, whose __init__ re-exports evaluate
    ("world_model", "task_judge", "sharding", "rollout", "evaluate", ""),
    ("loggers",),
    ("callbacks",),
    ("probes", "models"),
    ("planning",),
    ("toy",),
    ("cli", "report_command", "__main__"),
)

SHIMS = frozenset(
    {
        "simgate_tracking.probes.planning",
        "simgate_tracking.probes.planning_envs",
        "simgate_tracking.probes.planning_judges",
        "simgate_tracking.probes.planning_planner",
    }
)

# torchmetrics' two layers: a metric class imports its functional twin's `_x_update` / `_x_compute` (STYLE.md)
PRIVATE_BY_CONVENTION = (("functional", "functional"), ("functional", "metrics"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every in-package import of the module, lazy ones included."""
    found = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append((target, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.append((alias.name, [], node.lineno))
    return found


def layer_of(module: str) -> int | None:
    """The layer of the longest entry of LAYERS that is the module's path inside the package or a prefix of it."""
    inside = module.removeprefix(PACKAGE).removeprefix(".")
    best: tuple[int, int] | None = None
    for index, layer in enumerate(LAYERS):
        for entry in layer:
            if inside == entry or (entry and inside.startswith(entry + ".")):
                if best is None or len(entry) > best[1]:
                    best = (index, len(entry))
    return None if best is None else best[0]


def describe(layer: int) -> str:
    return f"layer {layer} {LAYERS[layer]}"


def test_every_module_has_a_layer():
    missing = [name for name in modules() if layer_of(name) is None]
    assert not missing, f"Modules without a layer: {missing}; add them to LAYERS in {Path(__file__).name}"


def upward_imports() -> list[str]:
    edges = []
    for name, path in modules().items():
        if name in SHIMS:
            continue
        own = layer_of(name)
        for target, taken, line in imports(name, path):
            # `from package import module` imports the submodule: judge each one
            targets = [f"{target}.{t}" if f"{target}.{t}" in modules() else target for t in taken] or [target]
            for module in targets:
                theirs = layer_of(module)
                if own is not None and theirs is not None and theirs > own:
                    edges.append(
                        f"{path.relative_to(ROOT.parent)}:{line}: {name} ({describe(own)}) imports {module} "
                        f"({describe(theirs)})"
                    )
    return edges


def test_imports_point_down_the_layers():
    edges = upward_imports()
    assert not edges, "Imports that run back up the layers:\n" + "\n".join(edges)


def test_the_layering_check_sees_an_upward_import(tmp_path, monkeypatch):
    """A metric importing the callback, inside a function, is caught and named."""
    fake = tmp_path / PACKAGE
    (fake / "metrics").mkdir(parents=True)
    (fake / "callbacks").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "callbacks" / "__init__.py").write_text("")
    (fake / "metrics" / "__init__.py").write_text("")
    (fake / "metrics" / "bad.py").write_text(
        "def plot():\n    from simgate_tracking.callbacks import SimulatorGateCallback\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    edges = upward_imports()
    assert len(edges) == 1
    assert "simgate_tracking.metrics.bad" in edges[0] and "imports simgate_tracking.callbacks" in edges[0]
    assert "metrics/bad.py:2" in edges[0]


def private_imports() -> list[str]:
    found = []
    for name, path in modules().items():
        own_package = name.split(".")[1] if "." in name else ""
        for target, taken, line in imports(name, path):
            if target == name:
                continue
            their_package = target.split(".")[1] if "." in target else ""
            if (their_package, own_package) in PRIVATE_BY_CONVENTION:
                continue
            for private in (t for t in taken if t.startswith("_") and not t.startswith("__")):
                found.append(f"{path.relative_to(ROOT.parent)}:{line}: {name} imports {private} from {target}")
    return found


def test_no_module_imports_another_modules_private_names():
    found = private_imports()
    assert not found, "Private names used across modules (make them public):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        (
            "simgate_tracking.callbacks",
            ("gymnasium", "minigrid", "mujoco", "highway_env", "simgate_tracking.toy", "simgate_tracking.probes"),
        ),
        ("simgate_tracking.planning", ("gymnasium", "minigrid", "simgate_tracking.toy", "simgate_tracking.probes")),
        ("simgate_tracking.planning.result", ("gymnasium", "minigrid", "simgate_tracking.toy", "lightning")),
    ],
)
def test_light_imports_load_no_environment(module, forbidden):
    """In a fresh interpreter: importing the callbacks loads no real environment and not the toy world."""
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"forbidden = {forbidden!r}\n"
        "loaded = sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in forbidden))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent, check=True
    ).stdout
    assert out.strip() == "[]", f"import {module} loaded {out.strip()}"
