"""The printed report: a table of medians and ratios, then every target with PASS or FAIL."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.demo_share import GateShare
from benchmarks.speed import FLOOR, NAIVE, SSIM, SpeedResult
from benchmarks.takes import ONE_TAKE, TakesResult


@dataclass(frozen=True)
class Target:
    """One performance target: what is compared, the measured value, the limit and whether it holds."""

    name: str
    measured: str
    limit: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        """``PASS``, ``FAIL`` or ``n/a``."""
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def speed_table(result: SpeedResult) -> str:
    """Median time, frames per second and multiple of the floor for every case of one bundle."""
    floor = result.seconds[FLOOR]
    lines = [
        f"## {result.size} (B x K+1 x T x C x H x W), {result.size.frames} frames, {result.device}, {result.dtype}",
        f"{'case':<42} {'median ms':>11} {'frames/s':>12} {'x floor':>9}",
    ]
    for name, seconds in result.seconds.items():
        lines.append(
            f"{name:<42} {seconds * 1e3:>11.2f} {result.frames_per_second(name):>12,.0f} {seconds / floor:>9.2f}"
        )
    if result.naive_gap is not None:
        lines.append(f"naive loop agrees with the scorecard: largest score difference {result.naive_gap:.1e}")
    return "\n".join(lines)


def speed_targets(result: SpeedResult) -> list[Target]:
    """The three speed targets on one bundle: against the floor, the naive loop and torchmetrics SSIM."""
    axes, label = result.axes, f"{result.size} {result.device} {result.dtype}"
    targets = [
        Target(
            f"5-axis update / floor [{label}]",
            f"{axes / result.seconds[FLOOR]:.2f}x",
            "<= 3x",
            axes <= 3 * result.seconds[FLOOR],
        ),
        Target(
            f"5-axis update / SSIM [{label}]",
            f"{axes / result.seconds[SSIM]:.3f}",
            "<= 0.2",
            axes * 5 <= result.seconds[SSIM],
        ),
    ]
    if NAIVE in result.seconds:
        speedup = result.seconds[NAIVE] / axes
        targets.insert(1, Target(f"naive loop / 5-axis update [{label}]", f"{speedup:.1f}x", ">= 10x", speedup >= 10))
    return targets


def takes_table(result: TakesResult) -> str:
    """Median time and multiples of the floor (one read of every take) and of the one-take update, per case."""
    floor, one = result.floor, result.seconds[ONE_TAKE]
    size = result.size
    shape = f"{size.episodes}x{result.takes}x{size.branches}x{size.steps}x{size.channels}x{size.height}x{size.width}"
    lines = [
        f"## R = {result.takes} real takes: {shape} (B x R x K+1 x T x C x H x W), {result.device}, {result.dtype}",
        f"{'case':<56} {'median ms':>11} {'x floor':>9} {'x one take':>11}",
    ]
    for name, seconds in result.seconds.items():
        lines.append(f"{name:<56} {seconds * 1e3:>11.2f} {seconds / floor:>9.2f} {seconds / one:>11.2f}")
    return "\n".join(lines)


def takes_targets(result: TakesResult) -> list[Target]:
    """The R-take update against the floor of one read of every take; the one-take update beside it, for scale."""
    label = f"{result.size} {result.device} {result.dtype}"
    ms = result.update * 1e3, result.floor * 1e3, result.seconds[ONE_TAKE] * 1e3
    return [
        Target(
            f"R = {result.takes} takes update / floor [{label}]",
            f"{ms[0] / ms[1]:.2f}x ({ms[0]:.1f} ms, floor {ms[1]:.1f} ms)",
            "<= 3x",
            result.update <= 3 * result.floor,
        ),
        Target(
            f"  one-take update (take 0) / floor [{label}]",
            f"{ms[2] / ms[1]:.2f}x ({ms[2]:.1f} ms)",
            "for scale",
            None,
        ),
    ]


def state_target(small: int, large: int, episodes: tuple[int, int], what: str = "scorecard state bytes") -> Target:
    """Metric state bytes must not grow with the probe set."""
    name = f"{what}, {episodes[0]} vs {episodes[1]} episodes"
    return Target(name, f"{small} B vs {large} B", "equal", small == large)


def memory_target(added: int | None, batch: int, method: str) -> Target:
    """The gate check's added peak memory must stay within twice one batch of rollouts."""
    if added is None:
        return Target("gate check added peak memory", method, "<= 2x one batch", None)
    ratio = added / batch
    return Target(
        "gate check added peak memory",
        f"{_mib(added)} = {ratio:.2f}x one batch ({_mib(batch)})",
        "<= 2x one batch",
        ratio <= 2,
    )


def share_targets(share: GateShare | None) -> list[Target]:
    """The gate's share of the demo's training wall time: the whole callback hook, and the check alone."""
    name, alone = "gate share of demo training time", "  of which rollouts and scorecard"
    if share is None:
        return [Target(name, "skipped (--no-demo)", "< 10%", None)]
    check = share.gate_seconds - sum(share.parts.values())
    return [
        Target(name, f"{share.fraction:.1%} ({share.detail})", "< 10%", share.fraction < 0.10),
        Target(alone, f"{check / share.training_seconds:.1%} (without planning probe, dashboards)", "< 10%", None),
    ]


def targets_table(targets: list[Target]) -> str:
    """Every target with its measured value, limit and verdict."""
    width = max(len(t.name) for t in targets)
    lines = [f"{'target':<{width}}  {'measured':<40} {'limit':<16} verdict"]
    lines += [f"{t.name:<{width}}  {t.measured:<40} {t.limit:<16} {t.verdict}" for t in targets]
    return "\n".join(lines)
