"""The ``simgate`` command: ``simgate demo`` trains a toy model with the gate on, ``simgate report`` reads runs."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simgate_tracking.gate import AXES, GateResult
from simgate_tracking.report import PlanningResult, read_reports

CURVES_PNG = "simgate-curves.png"
REALITY_NOTE = "reality: the real world's own score per axis, each real take held out against the others"
GOOD_FRAMES_PSNR = 20.0  # dB: where small toy frames look right to the eye; only the wording of the verdict uses it


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int but got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``simgate`` and its subcommands.

    Example:
        >>> args = build_parser().parse_args(["demo", "--logger", "wandb", "--logger", "csv", "--max-epochs", "3"])
        >>> args.command, args.logger, args.max_epochs, args.out
        ('demo', ['wandb', 'csv'], 3, 'runs')
    """
    parser = argparse.ArgumentParser(
        prog="simgate", description="Score action-conditioned world models as simulators, not renderers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,report}")
    demo = commands.add_parser(
        "demo",
        help="train a small world model on a toy world with the simulator gate on (about a minute on a CPU)",
        description="Train a small world model on the built-in toy world with the simulator gate, gate early "
        "stopping and checkpoint selection on the weakest axis; print the scorecard at every check.",
    )
    demo.add_argument(
        "--logger",
        action="append",
        choices=("tensorboard", "wandb", "csv"),
        help="dashboard to log to; repeat for several (default: tensorboard; W&B runs offline unless logged in)",
    )
    demo.add_argument("--max-epochs", type=_positive_int, default=15, help="training epochs, one check each (15)")
    demo.add_argument("--out", default="runs", help="where runs go (runs)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data, model and probe set (0)")
    demo.add_argument(
        "--threads", type=_positive_int, default=1, help="torch CPU threads (1: fastest on a busy machine)"
    )
    demo.add_argument(
        "--stochastic",
        action="store_true",
        help="play the stochastic toy world (its blue object walks at random): the probe set holds 4 real takes "
        "of every branch, and the dashboards show reality's own score (below 1) beside the model's",
    )
    report = commands.add_parser(
        "report",
        help="print the latest scorecard of a run and draw its per-axis curves",
        description="Read the gate's JSON reports under RUN_DIR, print the latest scorecard and its alerts, and "
        "write a PNG of every axis over training with its threshold (and reality's own score, for a stochastic "
        "world's real takes).",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or any folder above one)")
    report.add_argument("--png", default=None, help=f"where the curves go (default: RUN_DIR/{CURVES_PNG})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``simgate`` with ``argv`` (default: the command line) and return the exit status.

    ``simgate demo`` returns 0 once the demo ran; ``simgate report`` returns 0, 1 when the PNG could not be written
    or its reader closed the output early (``simgate report RUN | head``), or 2 when ``RUN_DIR`` does not exist or
    holds no readable gate report. Files that are not gate reports are skipped, each with a line on stderr.

    Example:
        >>> import tempfile
        >>> from simgate_tracking import SimulatorGate
        >>> from simgate_tracking.report import GateCheck
        >>> run = Path(tempfile.mkdtemp())
        >>> for step, score in [(100, 0.4), (200, 0.8)]:
        ...     _ = GateCheck(SimulatorGate().evaluate({"controllability": score}), step, 0, "ab12").write(run)
        >>> main(["report", str(run)])  # doctest: +ELLIPSIS
        2 checks; latest at step 200 (epoch 0), probe set probe ab12
        simulator gate: PASS (weakest axis: controllability)
          controllability           0.800  > 0.65  <- weakest
        <BLANKLINE>
        Per-axis curves: .../simgate-curves.png
        0
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    png = None if args.png is None else Path(args.png)
    if png is not None and args.png.endswith(("/", os.sep)):  # a folder, perhaps still to make
        png = png / CURVES_PNG
    return _report_until_reader_leaves(Path(args.run_dir), png)


# ------------------------------------------------------------------------ demo
def _demo(args: argparse.Namespace) -> int:
    from simgate_tracking.toy.demo import run_demo

    run = run_demo(
        out=args.out,
        loggers=args.logger or ["tensorboard"],
        max_epochs=args.max_epochs,
        seed=args.seed,
        threads=args.threads,
        stochastic=args.stochastic,
    )
    if run.result is None:
        print("No gate check ran: train for at least one epoch.")
        return 1
    print(f"\n{_final_words(run.result, run.checks, run.takes)}")
    if run.stopped_early:
        print(f"GateEarlyStopping stopped training: {run.stopped_early}")
    if run.best_checkpoint:
        print(f"Best checkpoint by the weakest axis (simgate/min_axis): {run.best_checkpoint}")
    print(f"Finished in {run.seconds:.0f} s.\n\nOpen the dashboards:")
    for line in _dashboard_hints(Path(args.out), run.log_dir, run.logger_dirs):
        print(f"  {line}")
    return 0


def _final_words(result: GateResult, checks: int, takes: int = 1) -> str:
    """The demo's closing verdict; with reality's own score per axis where it is below 1 (a stochastic world).

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"object_persistence": 0.5}, real_baseline={"object_persistence": 0.9})
        >>> print(_final_words(result, 3, takes=4))
        Final verdict after 3 checks: FAIL, weakest axis object_persistence = 0.500 (threshold 0.65, reality 0.900)
        Not a simulator yet: failing object_persistence.
        Reality's own score (each of its 4 real takes held out against the others): object_persistence 0.900.
    """
    verdict = "PASS" if result.passed else "FAIL"
    weakest = result.weakest_axis
    reality = _reality_shown(result.real_baseline)
    also = f", reality {result.real_baseline[weakest]:.3f}" if reality and weakest in result.real_baseline else ""
    lines = [
        f"Final verdict after {checks} checks: {verdict}, weakest axis {weakest} = {result.scores[weakest]:.3f} "
        f"(threshold {result.thresholds[weakest]:.2f}{also})"
    ]
    psnr, ssim = result.extras.get("psnr"), result.extras.get("ssim")
    frames = "" if psnr is None or ssim is None else f"frames PSNR {psnr:.1f} dB, SSIM {ssim:.2f}; "
    if result.passed:
        lines.append(f"A usable simulator on this probe set: {frames}every axis above its threshold.")
    elif psnr is not None and psnr >= GOOD_FRAMES_PSNR:
        lines.append(f"Looks good, fails as a simulator: {frames}failing {', '.join(result.failing_axes)}.")
    else:
        lines.append(f"Not a simulator yet: {frames}failing {', '.join(result.failing_axes)}.")
    if reality:  # a stochastic world: one real sample is not reality's spread, so reality scores below 1 itself
        own = ", ".join(f"{name} {value:.3f}" for name, value in result.real_baseline.items())
        held_out = f"each of its {takes} real takes" if takes > 1 else "each real take"
        lines.append(f"Reality's own score ({held_out} held out against the others): {own}.")
    return "\n".join(lines)


def _reality_shown(real_baseline: dict[str, float]) -> bool:
    """Whether reality's own score says something: not 1 on some axis, as a stochastic world's real takes give."""
    return any(value != 1.0 for value in real_baseline.values())


def _dashboard_hints(out: Path, log_dir: Path, logger_dirs: dict[str, Path]) -> list[str]:
    hints = []
    if "tensorboard" in logger_dirs:
        hints.append(f"tensorboard --logdir {shlex.quote(str(out))}    # then http://localhost:6006")
    if "wandb" in logger_dirs:
        run = logger_dirs["wandb"]
        if run.name.startswith("offline-run-"):
            hints.append(f"wandb sync {shlex.quote(str(run))}    # an offline run: upload it after `wandb login`")
        else:
            hints.append("W&B: follow the run's link above (project simgate-demo)")
    if "csv" in logger_dirs:
        hints.append(f"{shlex.quote(str(logger_dirs['csv'] / 'metrics.csv'))}    # every scalar, as CSV")
    hints.append(f"simgate report {shlex.quote(str(log_dir))}    # latest scorecard and per-axis curves (PNG)")
    return hints


# ---------------------------------------------------------------------- report
def _report_until_reader_leaves(run_dir: Path, png: Path | None) -> int:
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
    reality = any(_reality_shown(_real_baseline(report)) for report in reports)
    print(_scorecard(GateResult.from_dict(latest), reality))
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
    if not reality or _reality_shown(result.real_baseline):
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
    reality = any(_reality_shown(baseline) for baseline in baselines)
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


if __name__ == "__main__":
    sys.exit(main())
