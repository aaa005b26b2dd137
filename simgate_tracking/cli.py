"""The ``simgate`` command: ``simgate demo`` trains a toy model with the gate on, ``simgate report`` reads runs."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from simgate_tracking.gate import GateResult
from simgate_tracking.report_command import CURVES_PNG, REALITY_NOTE, plot_curves, reality_shown, run_report

__all__ = ["CURVES_PNG", "REALITY_NOTE", "build_parser", "main", "plot_curves"]

GOOD_FRAMES_PSNR = 20.0  # dB: where small toy frames look right to the eye; only the wording of the verdict uses it


def _count_argument(text: str) -> int:
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
    demo.add_argument("--max-epochs", type=_count_argument, default=15, help="training epochs, one check each (15)")
    demo.add_argument("--out", default="runs", help="where runs go (runs)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data, model and probe set (0)")
    demo.add_argument(
        "--threads", type=_count_argument, default=1, help="torch CPU threads (1: fastest on a busy machine)"
    )
    demo.add_argument(
        "--stochastic",
        action="store_true",
        help="play the stochastic toy world (its blue object walks at random): the probe set holds 4 real takes "
        "of every branch, and the dashboards show reality's own score (below 1) beside the model's",
    )
    demo.add_argument(
        "--model",
        choices=("toy", "diffusion"),
        default="toy",
        help="the world model: toy (a small conv model, the default) or diffusion (a diffusers UNet sampling every "
        "frame in 2 denoising steps; needs the `diffusion` extra, about 10x slower to train)",
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
    return run_report(Path(args.run_dir), png)


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
        model=args.model,
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
    reality = reality_shown(result.real_baseline)
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


if __name__ == "__main__":
    sys.exit(main())
