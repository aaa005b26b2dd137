"""``python -m benchmarks --markdown PATH``: the same figures as a Markdown page, with when and where they were taken.

The page opens with the date, the command, the machine (CPU model, cores, threads, GPU), the torch, numba and Python
versions and the load average at the start and at the end, then a table per size and every target, so figures copied
into the documentation say what produced them.
"""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

from benchmarks.speed import FLOOR, SpeedResult
from benchmarks.table import Target
from benchmarks.takes import ONE_TAKE, TakesResult


def cpu_name() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model")]
        cpu = next((name for name in names if not name.isdigit()), cpu)
    return cpu


def load_average() -> str:
    """The 1-minute load average, or ``n/a`` where the platform has none."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cell(text: str) -> str:
    # a pipe would end the cell, square brackets could read as a link
    return text.strip().replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r``."""
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(_cell(cell) for cell in line) + " |" for line in lines)


class MarkdownReport:
    """The figures of one benchmark run, gathered as they are printed and written as one Markdown page."""

    def __init__(self, argv: Sequence[str], device: str) -> None:
        self.command = " ".join(["python -m benchmarks", *(shlex.quote(arg) for arg in argv)])
        self.device = device
        self.started = datetime.now(timezone.utc)
        self.load_at_start = load_average()
        self.sections: list[str] = []

    def speed(self, result: SpeedResult) -> None:
        """A table of median times, frames per second and multiples of the floor for one bundle."""
        floor = result.seconds[FLOOR]
        rows = [
            [name, f"{s * 1e3:.2f}", f"{result.frames_per_second(name):,.0f}", f"{s / floor:.2f}"]
            for name, s in result.seconds.items()
        ]
        size = f"{result.size} (B x K+1 x T x C x H x W): {result.size.frames} frames"
        title = f"## {size}, {result.device}, {result.dtype}"
        text = f"{title}\n\n" + _table(["case", "median ms", "frames/s", "x floor"], rows, "lrrr")
        if result.naive_gap is not None:
            text += f"\n\nThe naive loop agrees with the scorecard: largest score difference {result.naive_gap:.1e}."
        self.sections.append(text)

    def takes(self, result: TakesResult) -> None:
        """A table of median times and multiples of the floor and of the one-take update, for R real takes."""
        floor, one = result.floor, result.seconds[ONE_TAKE]
        rows = [[name, f"{s * 1e3:.2f}", f"{s / floor:.2f}", f"{s / one:.2f}"] for name, s in result.seconds.items()]
        title = f"## R = {result.takes} real takes: {result.size}, {result.device}, {result.dtype}"
        self.sections.append(f"{title}\n\n" + _table(["case", "median ms", "x floor", "x one take"], rows, "lrrr"))

    def targets(self, targets: list[Target], memory_method: str) -> None:
        """Every target with its measured value, limit and verdict."""
        rows = [[t.name, t.measured, t.limit, t.verdict] for t in targets]
        table = _table(["target", "measured", "limit", "verdict"], rows, "llll")
        self.sections.append(f"## Targets\n\nPeak memory read with {memory_method}.\n\n{table}")

    def note(self, text: str) -> None:
        """A line printed after the tables (the demo's breakdown, the CPU kernel's cost)."""
        self.sections.append(text)

    def machine(self) -> str:
        """When and where, as a list: date, command, CPU, threads, GPU, versions, load average."""
        facts = [
            ("date", self.started.strftime("%Y-%m-%d %H:%M UTC")),
            ("command", f"`{self.command}`"),
            ("CPU", f"{cpu_name()}, {os.cpu_count()} cores; torch threads: {torch.get_num_threads()}"),
        ]
        if self.device == "cuda":
            facts.append(("GPU", torch.cuda.get_device_name()))
        facts += [
            ("versions", f"torch {torch.__version__}, numba {_version('numba')}, Python {platform.python_version()}"),
            ("load average (1 min)", f"{self.load_at_start} at the start, {load_average()} at the end"),
        ]
        return "\n".join(f"- **{name}**: {value}" for name, value in facts)

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the page: a title, the machine table, then every table and note in the order they were printed."""
        page = ["# Benchmark figures", self.machine(), *self.sections]
        Path(path).write_text("\n\n".join(page) + "\n")
