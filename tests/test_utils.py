"""The shared helpers: int checks, optional imports, rank-zero warnings; and the package without its extras."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from simgate_tracking._utils import PREFIX, check_int, check_positive_int, global_rank, rank_zero_warn, require

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("wandb", "tensorboard", "gymnasium", "minigrid", "mujoco", "highway_env", "numba", "matplotlib", "PIL")
# modules whose whole purpose is an extra: they may import it at module level
NEEDS_AN_EXTRA = ("simgate_tracking.functional._fused_kernel",)


@pytest.mark.parametrize(
    ("value", "low", "high", "message"),
    [
        (0, 1, None, "Expected argument `n` to be an int >= 1 but got 0"),
        (True, 0, None, "Expected argument `n` to be an int >= 0 but got True"),
        (2.0, 1, None, "Expected argument `n` to be an int >= 1 but got 2.0"),
        (8, 1, 7, "Expected argument `n` to be an int in [1, 7] but got 8"),
    ],
)
def test_check_int_names_the_argument_the_range_and_the_value(value, low, high, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_int(value, "n", low, high)


def test_check_int_returns_good_values_and_the_positive_form_says_positive():
    assert check_int(0, "n", 0) == 0 and check_int(7, "n", 1, 7) == 7 and check_positive_int(3, "n") == 3
    with pytest.raises(ValueError, match="`batch_size` to be a positive int but got -1"):
        check_positive_int(-1, "batch_size")


def test_require_imports_or_names_the_extra(monkeypatch):
    assert require("media", "math").sqrt(9.0) == 3.0
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(
        ModuleNotFoundError, match=r"WandbGateLogger: `wandb` is not installed; .*simgate-tracking\[wandb\]"
    ):
        require("wandb", "wandb", "WandbGateLogger")


def test_rank_zero_warn_warns_on_rank_zero_only(monkeypatch):
    assert PREFIX == "simgate" and global_rank() == 0
    with pytest.warns(UserWarning, match="careful"):
        rank_zero_warn("careful")
    with pytest.warns(DeprecationWarning, match="old"):
        rank_zero_warn("old", DeprecationWarning)
    monkeypatch.setenv("RANK", "1")
    from lightning_utilities.core.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rank_zero_warn("not on rank one")


def test_old_homes_of_the_helpers_still_import():
    from simgate_tracking.loggers.base import PREFIX as logger_prefix
    from simgate_tracking.metrics._rank_zero import rank_zero_warn as metric_warn
    from simgate_tracking.probes._optional import import_optional

    assert logger_prefix == PREFIX and metric_warn is rank_zero_warn
    with pytest.raises(ModuleNotFoundError, match=r"simgate-tracking\[gym\]"):
        import_optional("no_such_module_here")


def test_every_module_without_an_extra_imports_when_the_extras_are_missing():
    """`pip install simgate-tracking` alone: the package and every module not built on an extra import."""
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys
        from importlib.abc import MetaPathFinder

        BLOCKED = {EXTRAS!r}

        class Missing(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Missing())
        import importlib.metadata as metadata

        def hidden(original):
            def lookup(name, *args, **kwargs):
                if name.lower().replace("-", "_") in {{b.lower() for b in BLOCKED}} | {{"pillow", "highway_env"}}:
                    raise metadata.PackageNotFoundError(name)
                return original(name, *args, **kwargs)
            return lookup

        # as without the extras: no distribution metadata either (libraries check it before importing)
        metadata.distribution = hidden(metadata.distribution)
        metadata.version = hidden(metadata.version)
        import simgate_tracking

        failed = []
        for info in pkgutil.walk_packages(simgate_tracking.__path__, "simgate_tracking."):
            if info.name in {NEEDS_AN_EXTRA!r}:
                continue
            try:
                importlib.import_module(info.name)
            except ModuleNotFoundError as err:
                failed.append(f"{{info.name}}: {{err}}")
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
        print("FAILED", failed)
        print("LOADED", loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "FAILED []" in out.stdout, out.stdout
    assert "LOADED []" in out.stdout, out.stdout


def test_no_module_keeps_its_own_copy_of_a_shared_helper():
    import ast

    copies = []
    for path in sorted((ROOT / "simgate_tracking").rglob("*.py")):
        if path.name == "_utils.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name in {"_int_at_least", "_positive_int", "rank_zero_warn"}:
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno} defines {node.name}")
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(target, ast.Name) and target.id == "PREFIX" for target in targets):
                copies.append(f"{path.relative_to(ROOT)}:{node.lineno} sets PREFIX")
    assert not copies, "use simgate_tracking._utils instead:\n" + "\n".join(copies)
