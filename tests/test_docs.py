"""The documentation site: pages carry README's sections unchanged, their examples run, and the strict build passes."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", flags=re.S)  # as tests/test_readme.py reads them


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_readme = _load("sync_readme")

PAGES = sync_readme.pages()
PAGES_WITH_CODE = [page for page in PAGES if PYTHON_BLOCK.search(page.read_text())]


def _name(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_sections_equal_readme_sections(page):
    readme = sync_readme.sections(README.read_text())
    on_page = sync_readme.sections(page.read_text())
    # a section README no longer has (shrunk to a pointer to the site) is the page's own from then on
    stale = [name for name in on_page if name in readme and on_page[name] != sync_readme.for_page(readme[name], page)]
    assert not stale, f"docs/{_name(page)}: {stale} differ from README.md; run `python docs/sync_readme.py`"


def test_every_readme_section_is_on_a_page():
    on_pages = {name for page in PAGES for name in sync_readme.sections(page.read_text())}
    missing = sorted(set(sync_readme.sections(README.read_text())) - on_pages)
    assert not missing, f"README.md sections on no page of docs/: {missing}"


def test_sync_rewrites_links_and_keeps_sections_readme_lacks(tmp_path):
    body = "![chart](docs/img/scorecard.png) and `docs/img` in code\n| `\\|x\\|` | a \\| b |\n"
    assert sync_readme.for_page(body, DOCS / "dashboards.md") == (
        "![chart](img/scorecard.png) and `docs/img` in code\n| `|x|` | a \\| b |\n"
    )
    assert sync_readme.for_page(body, DOCS / "api" / "page.md").startswith("![chart](../img/scorecard.png)")
    page = tmp_path / "page.md"
    marked = "# Page\n<!-- section:a -->\n{}\n<!-- /section:a -->\n<!-- section:b -->\nold b\n<!-- /section:b -->\n"
    page.write_text(marked.format("old a"))
    assert sync_readme.synced(page, {"a": "new a\n"}) == marked.format("new a")  # b: README has no such section


def test_docstring_markup_reads_google_docstrings_as_markdown():
    pytest.importorskip("griffe", reason="the `docs` extra is not installed")
    markup = _load("docstring_markup")
    docstring = (
        "Sum of :class:`~torchmetrics.Metric` states, see :func:`simgate_tracking.evaluate`.\n\nExample:\n    >>> 1\n"
    )
    assert markup.to_markdown(docstring) == (
        "Sum of `Metric` states, see `simgate_tracking.evaluate`.\n\nExamples:\n    >>> 1\n"
    )


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_name)
def test_page_python_blocks_run(page, tmp_path):
    blocks = PYTHON_BLOCK.findall(page.read_text())
    if set(blocks) <= set(PYTHON_BLOCK.findall(README.read_text())):
        pytest.skip("every block is also in README.md, whose blocks tests/test_readme.py runs")
    script = tmp_path / "page_blocks.py"
    script.write_text("\n\n".join(blocks))
    env = {"WANDB_MODE": "offline", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_mkdocs_build_is_strict_clean(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the `docs` extra is not installed")
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # strict: a broken link, anchor or docstring warning fails
    api = (site / "api" / "index.html").read_text()
    for name in ("evaluate.evaluate", "ProbeSet", "SimulatorGate", "GateResult", "AXES"):
        assert f'id="simgate_tracking.{name}"' in api, name
    assert 'src="../img/scorecard.png"' in (site / "dashboards" / "index.html").read_text()
    assert (site / "img" / "scorecard.png").read_bytes() == (DOCS / "img" / "scorecard.png").read_bytes()


def test_benchmark_figures_page(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ is not installed: `python -m pytest` finds it, `pytest` not
    from benchmarks.bundle import Size
    from benchmarks.markdown import MarkdownReport
    from benchmarks.speed import AXES_UPDATE, FLOOR, SpeedResult
    from benchmarks.table import Target

    report = MarkdownReport(["--size", "2x2x4x3x16x16", "--markdown", "figures.md"], "cpu")
    seconds = {FLOOR: 0.002, AXES_UPDATE: 0.001}
    report.speed(SpeedResult(Size.parse("2x2x4x3x16x16"), "cpu", "float32", seconds, naive_gap=None))
    report.targets([Target("5-axis update / floor [2x2x4x3x16x16 cpu float32]", "0.50x", "<= 3x", True)], "profiler")
    report.write(tmp_path / "figures.md")
    page = (tmp_path / "figures.md").read_text()
    assert page.startswith("# Benchmark figures\n")
    assert "- **command**: `python -m benchmarks --size 2x2x4x3x16x16 --markdown figures.md`" in page
    for fact in ("date", "CPU", "versions", "load average (1 min)"):
        assert f"- **{fact}**: " in page, fact
    assert re.search(r"- \*\*versions\*\*: torch \S+, numba \S+, Python \d", page)
    assert "| scorecard: 5 axes + delta-PSNR | 1.00 | 16,000 | 0.50 |" in page  # 16 frames in 1 ms, half the floor
    assert "| 5-axis update / floor \\[2x2x4x3x16x16 cpu float32\\] | 0.50x | <= 3x | PASS |" in page
