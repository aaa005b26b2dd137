"""``simgate report``: the latest check's scorecard with reality's column and intervals, and per-axis curves."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simgate_tracking.gate import AXES, GateResult
from simgate_tracking.planning.result import PlanningResult
from simgate_tracking.report import episodes_needed_line, read_reports

CURVES_PNG = "simgate-curves.png"
REALITY_NOTE = "reality: the real world's own score per axis, each real take held out against the others"


def reality_shown(real_baseline: dict[str, float]) -> bool:
    """Whether reality's own score says something: not 1 on some axis, as a stochastic world's real takes give."""
    return any(value != 1.0 for value in real_baseline.values())


def run_report(run_dir: Path, png: Path | None) -> int:
    """``simgate report``; when stdout's reader leaves early (``| head``), stop quietly instead of a traceback."""
    try:
        status = _report(run_dir, png)
        sys.stdout.flush()  # inside the try: a pipe closed early fails here, not at interpreter exit
    except BrokenPipeError:
        # nothing more can be shown; point stdout at devnull so Python's own flush at exit has nowhere to fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


def _report(run_dir: Path, png: Path | None) -> int:
    if not run_dir.exists():
        print(f"simgate report: {run_dir} does not exist", file=sys.stderr)
        return 2
    files = [path for path in run_dir.rglob("check-*.json") if path.is_file()]
    folders = sorted({path.parent for path in files}, key=lambda p: p.stat().st_mtime)
    if not folders:
        print(f"simgate report: no gate reports (check-<step>.json) under {run_dir}", file=sys.stderr)
        return 2
    if len(folders) > 1:
        others = ", ".join(str(folder) for folder in folders[:-1])
        print(f"{len(folders)} runs under {run_dir}; reading the latest, {folders[-1]} (others: {others})\n")
    reports = read_reports(folders[-1], on_skip=_say_skipped)
    if not reports:
        print(f"simgate report: no readable gate reports under {folders[-1]}", file=sys.stderr)
        return 2
    _print_latest(reports)
    target = png or run_dir / CURVES_PNG
    if target.is_dir():
        target = target / CURVES_PNG
    try:
        plot_curves(reports, target)
    except (OSError, ModuleNotFoundError) as err:
        reason = f"{err.strerror}" if isinstance(err, OSError) and err.strerror else str(err)
        print(f"\nPer-axis curves could not be written to {target}: {reason}", file=sys.stderr)
        return 1
    print(f"\nPer-axis curves: {target}")
    return 0


def _say_skipped(path: Path, reason: str) -> None:
    print(f"simgate report: skipping {path}: {reason}", file=sys.stderr)


def _print_latest(reports: list[dict[str, Any]]) -> None:
    """The latest check's scorecard, with reality's column, the planning probe's latest result and its alerts."""
    latest = _in_axis_order(reports[-1])
    print(
        f"{len(reports)} checks; latest at step {latest.get('step')} (epoch {latest.get('epoch')}), probe set "
        f"{latest.get('probe_name')} {str(latest.get('manifest_hash', ''))[:12]}"
    )
    # reality's own score (real takes of a stochastic world) is shown for the whole run if any check measured it
    reality = any(reality_shown(_real_baseline(report)) for report in reports)
    print(_scorecard(GateResult.from_dict(latest), reality))
    needed = episodes_needed_line(latest)
    if needed:
        print(needed)
    if reality:
        print(f"  {REALITY_NOTE}")
    planned = [report for report in reports if isinstance(report.get("planning"), dict)]
    if planned:  # the planning probe runs every few checks: its latest result, with the step it ran at
        print(_planning_line(planned[-1]))
    alerts = latest.get("alerts")
    for alert in alerts if isinstance(alerts, list) else []:
        if isinstance(alert, dict):
            print(f"  ALERT {alert.get('level')}: {alert.get('title')}")


def _planning_line(report: dict[str, Any]) -> str:
    """The planning probe's result in a report that has one, and the step it ran at.

    Example:
        >>> _planning_line({"step": 320, "planning": {"success": [True, False], "success_real": [True, True]}})
        '  planning: 1/2 episodes reach the goal with the model, 2/2 with the real environment (step 320)'
    """
    planning = report["planning"]
    success, real = planning.get("success"), planning.get("success_real")
    success, real = [list(x) if isinstance(x, list) else [] for x in (success, real)]
    summary = PlanningResult(success, real, steps=[], steps_real=[]).summary()
    return f"  {summary} (step {report.get('step')})"


def _real_baseline(report: dict[str, Any]) -> dict[str, float]:
    """Reality's own score per axis in a report; 1 on every simulator axis for reports older than real takes.

    Example:
        >>> _real_baseline({"scores": {"controllability": 0.5, "psnr": 20.0}})
        {'controllability': 1.0}
        >>> _real_baseline({"scores": {"controllability": 0.5}, "real_baseline": {"controllability": 0.9}})
        {'controllability': 0.9}
    """
    baseline = report.get("real_baseline")
    if baseline is None:
        return {name: 1.0 for name in report.get("scores", {}) if name in AXES}
    return {name: float("nan") if value is None else float(value) for name, value in baseline.items()}


def _scorecard(result: GateResult, reality: bool) -> str:
    """The scorecard as the gate prints it; with ``reality``, its "(reality ...)" column even where it is 1.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> print(_scorecard(SimulatorGate().evaluate({"controllability": 0.8}), reality=True))
        simulator gate: PASS (weakest axis: controllability)
          controllability           0.800  > 0.65  (reality 1.000)  <- weakest
    """
    text = str(result)
    if not reality or reality_shown(result.real_baseline):
        return text  # the gate's own table shows reality's column exactly when some value is not 1
    lines = text.split("\n")
    for name, value in result.real_baseline.items():
        if name not in result.scores:
            continue
        row = f"  {name:<24}{result.scores[name]:7.3f}  > {result.thresholds[name]:.2f}"
        lines = [
            line.replace(row, f"{row}  (reality {value:.3f})", 1) if line.startswith(row) else line for line in lines
        ]
    return "\n".join(lines)


def _in_axis_order(report: dict[str, Any]) -> dict[str, Any]:
    """The report with its scores in the order of :data:`AXES` (JSON stores them sorted by name)."""
    scores = report.get("scores", {})
    ordered = {axis: scores[axis] for axis in AXES if axis in scores}
    return {**report, "scores": {**ordered, **{k: v for k, v in scores.items() if k not in ordered}}}


def plot_curves(reports: Sequence[dict[str, Any]], path: Path) -> None:
    """Draw every gated score over training steps, each with its threshold, and save a PNG.

    One panel per gated score: the simulator axes in their order, then any other the gate judged (``psnr``, the
    planning probe's success), on its own scale.

    When some report holds reality's own score below 1 (``real_baseline``: the real takes of a stochastic world,
    each held out against the others), every panel also draws it as a dashed grey line: the score a perfect
    simulator of that world reaches. Reports without it (one real take, or written before real takes) count 1.

    Args:
        reports: Gate reports ordered by step, as :func:`~simgate_tracking.report.read_reports` returns them.
        path: Where the PNG goes.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed.
        ValueError: If no report holds a gated score.
        OSError: If the PNG cannot be written.

    Example:
        >>> import tempfile
        >>> reports = [{"step": s, "scores": {"controllability": v}, "thresholds": {"controllability": 0.65},
        ...             "weakest_axis": "controllability", "passed": v > 0.65, "failing_axes": []}
        ...            for s, v in [(100, 0.4), (200, 0.8)]]
        >>> path = Path(tempfile.mkdtemp()) / "curves.png"
        >>> plot_curves(reports, path)
        >>> path.read_bytes()[1:4]
        b'PNG'
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "simgate report draws curves with matplotlib: pip install simgate-tracking[media]"
        ) from err
    steps = [int(report.get("step", 0)) for report in reports]
    names = _curve_names(reports)
    if not names:
        raise ValueError("Expected reports with gated scores to draw but got none")
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), squeeze=False)
    last = GateResult.from_dict(reports[-1])
    baselines = [_real_baseline(report) for report in reports]
    reality = any(reality_shown(baseline) for baseline in baselines)
    for ax, name in zip(axes[0], names, strict=True):
        scores = [report.get("scores", {}).get(name, float("nan")) for report in reports]
        thresholds = [report.get("thresholds", {}).get(name, float("nan")) for report in reports]
        ax.plot(steps, scores, marker="o", markersize=3, label="score")
        ax.plot(steps, thresholds, linestyle="--", color="tab:red", label="threshold")
        if reality and name in AXES:  # where a perfect simulator of a stochastic world would sit
            own = [baseline.get(name, float("nan")) for baseline in baselines]
            ax.plot(steps, own, linestyle="--", color="dimgray", label="reality")
        failing = name in last.failing_axes  # the latest check's failing axes get red titles
        ax.set_title(name.replace("_", " "), fontsize=10, color="tab:red" if failing else "black")
        ax.set_xlabel("step")
        if all(0.0 <= value <= 1.0 for value in scores + thresholds if value == value):
            ax.set_ylim(-0.02, 1.02)  # a score in [0, 1]; another (a PSNR in dB) keeps its own scale
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score")
    axes[0][0].legend(loc="lower right", fontsize=8)
    verdict = "PASS" if last.passed else f"FAIL, weakest {last.weakest_axis}"
    figure.suptitle(f"simulator gate over training (latest: {verdict})", fontsize=11)
    figure.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


def _curve_names(reports: Sequence[dict[str, Any]]) -> list[str]:
    """Every gated score of the reports: the simulator axes in their order, then any other (``psnr``, planning).

    Example:
        >>> _curve_names([{"scores": {"psnr": 25.0}}, {"scores": {"task_validity": 0.5, "controllability": 0.9}}])
        ['controllability', 'task_validity', 'psnr']
    """
    seen = [name for report in reports for name in report.get("scores", {})]
    return [axis for axis in AXES if axis in seen] + [name for name in dict.fromkeys(seen) if name not in AXES]
