"""``python -m benchmarks``: time the gate against its targets and print a table with PASS or FAIL for each.

Examples::

    python -m benchmarks                         # both default sizes, on CUDA when present, else CPU
    python -m benchmarks --size 4x3x8x3x32x32 --repeats 1 --slow-repeats 1 --no-demo
    python -m benchmarks --device cuda --dtype float32 --dtype bfloat16
    python -m benchmarks --takes 0                # without the stochastic-world (R real takes) rows
    python -m benchmarks --markdown docs/performance-figures.md   # also write the figures as a Markdown page
    python -m benchmarks --diffusion-steps 2      # also the gate's share with a diffusion world model (2 steps)
    python -m benchmarks --scaling               # only: episodes/s and memory for 64/256/1024 episodes, 1/2/4 processes
    python -m benchmarks --mmap-gb 2              # only: open a 2 GB probe file memory-mapped, score one of 8 shards
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.bundle import Size, make_bundle, make_takes_bundle
from benchmarks.compile import kernel_cost
from benchmarks.demo_share import DEMO_EPOCHS, DEMO_WINDOWS, GateShare, gate_share
from benchmarks.markdown import MarkdownReport, cpu_name
from benchmarks.memory import gate_check_peak, scorecard_state_bytes
from benchmarks.speed import measure_speed
from benchmarks.table import (
    Target,
    memory_target,
    share_targets,
    speed_table,
    speed_targets,
    state_target,
    takes_table,
    takes_targets,
    targets_table,
)
from benchmarks.takes import TAKES, measure_takes
from simgate_tracking.functional._fused import compiled_kernel

DEFAULT_SIZES = ("16x3x16x3x64x64", "16x3x16x3x128x128")
STATE_FRAME = 32  # the largest frame side of the R-take state check's bundle
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: sizes, repeats, device, dtypes, threads and which parts to run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", type=Size.parse, help="B x K+1 x T x C x H x W (repeatable)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of every fast case (median reported)")
    parser.add_argument("--slow-repeats", type=int, default=3, help="timed runs of the naive loop and of SSIM")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dtype", action="append", choices=sorted(DTYPES), help="frame dtype (repeatable)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    parser.add_argument("--batch-size", type=int, default=8, help="episodes per world-model call (memory check)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive per-frame loop")
    parser.add_argument("--takes", type=int, default=TAKES, help="R real takes of a stochastic world (0: skip)")
    parser.add_argument("--no-demo", action="store_true", help="skip the gate's share of the demo's training time")
    parser.add_argument("--demo-epochs", type=int, default=DEMO_EPOCHS, help="epochs of the demo's training")
    parser.add_argument("--demo-windows", type=int, default=DEMO_WINDOWS, help="training windows per demo epoch")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="also write the figures as a Markdown page")
    parser.add_argument(
        "--diffusion-steps", type=int, action="append", help="also time the gate with a diffusion world model"
    )
    parser.add_argument("--scaling", action="store_true", help="only the scaling figures (episodes, processes)")
    parser.add_argument("--mmap-gb", type=float, metavar="GB", help="only: score one shard of a GB-sized mapped file")
    args = parser.parse_args(argv)
    if min(args.repeats, args.slow_repeats, args.threads, args.batch_size, args.demo_epochs, args.demo_windows) < 1:
        parser.error("--repeats, --slow-repeats, --threads, --batch-size and --demo-* must be >= 1")
    if args.takes == 1 or args.takes < 0:
        parser.error("--takes must be 0 (skip) or at least 2")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA build of torch and a GPU")
    args.size = args.size or [Size.parse(text) for text in DEFAULT_SIZES]
    args.dtype = args.dtype or (["float32", "float16", "bfloat16"] if args.device == "cuda" else ["float32"])
    return args


def machine(device: str) -> str:
    """One line naming the machine: CPU, cores and threads, torch version, GPU when used."""
    line = f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device == "cuda":
        line += f", {torch.cuda.get_device_name()}"
    if hasattr(os, "getloadavg"):
        # other processes on the same cores slow every case, multi-threaded ones most: say how busy the machine was
        line += f", load average {os.getloadavg()[0]:.1f}"
    return line


def closing_notes(device: str, share: GateShare | None) -> list[str]:
    """The lines after the targets: the gate's share of the demo by part, and what the CPU kernel costs a process."""
    notes = [] if share is None else [f"gate hook in the demo, as shares of training time: {share.breakdown()}"]
    if device == "cpu" and compiled_kernel() is None:
        notes.append("CPU kernel: not used here (numba missing, NUMBA_DISABLE_JIT=1 or SIMGATE_CPU_KERNEL=0)")
    elif device == "cpu":
        cost = kernel_cost()
        notes.append(
            f"CPU kernel, once per process: {cost.compile_seconds:.2f} s for the first update with an empty kernel "
            f"cache (compiling), {cost.cached_seconds:.2f} s once cached (loading it)"
        )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark, print the tables; exit status 1 if a measured target fails."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.scaling or args.mmap_gb:
        from benchmarks.scaling import run_scaling_options

        return run_scaling_options(args.scaling, args.mmap_gb)
    report = MarkdownReport(sys.argv[1:] if argv is None else argv, args.device)
    print(f"# simgate-tracking benchmarks on {machine(args.device)}", flush=True)
    targets: list[Target] = []
    for size in args.size:
        bundle = make_bundle(size)
        for dtype in args.dtype:
            moved = bundle.to(args.device, DTYPES[dtype])
            with torch.no_grad():
                result = measure_speed(
                    moved, size, args.repeats, args.slow_repeats, with_naive=not args.no_naive and dtype == "float32"
                )
            print("\n" + speed_table(result), flush=True)
            report.speed(result)
            targets += speed_targets(result)
        if args.takes:
            takes_bundle = make_takes_bundle(size, args.takes)
            for dtype in args.dtype:
                with torch.no_grad():
                    found = measure_takes(
                        takes_bundle.to(args.device, DTYPES[dtype]), size, args.repeats, args.slow_repeats
                    )
                print("\n" + takes_table(found), flush=True)
                report.takes(found)
                targets += takes_targets(found)
    first = make_bundle(args.size[0]).to(args.device)
    small, large = scorecard_state_bytes(first, 1), scorecard_state_bytes(first, 16)
    episodes = args.size[0].episodes
    targets.append(state_target(small, large, (episodes, 16 * episodes)))
    if args.takes:
        # state does not depend on the frame size: small frames keep 17 updates of the R-take path quick
        frames = replace(
            args.size[0], height=min(args.size[0].height, STATE_FRAME), width=min(args.size[0].width, STATE_FRAME)
        )
        takes_bundle = make_takes_bundle(frames, args.takes).to(args.device)
        small, large = scorecard_state_bytes(takes_bundle, 1), scorecard_state_bytes(takes_bundle, 16)
        what = f"scorecard state bytes, R = {args.takes} takes"
        targets.append(state_target(small, large, (episodes, 16 * episodes), what))
    peak = gate_check_peak(first, args.size[0], args.batch_size)
    targets.append(memory_target(peak.added_bytes, peak.batch_bytes, peak.method))
    share = None if args.no_demo else gate_share(args.demo_epochs, args.demo_windows)
    targets += share_targets(share)
    load = f", load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    print(f"\n## targets (memory: {peak.method}{load})\n" + targets_table(targets), flush=True)
    report.targets(targets, peak.method)
    for note in closing_notes(args.device, share):
        print(note)
        report.note(note)
    if args.diffusion_steps:
        from benchmarks.diffusion import diffusion_share, diffusion_table

        shares = [diffusion_share(steps, args.demo_epochs, args.demo_windows) for steps in args.diffusion_steps]
        print("\n" + diffusion_table(shares), flush=True)
    if args.markdown:
        report.write(args.markdown)
        print(f"figures written to {args.markdown}")
    return 1 if any(t.passed is False for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
