"""The scorecard verdict: pass or fail on the weakest simulator axis."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simgate_tracking.confidence import DEFAULT_LEVEL, Interval, Verdict, check_level, gate_verdict

AXES: tuple[str, ...] = (
    "controllability",
    "temporal_consistency",
    "object_persistence",
    "reset_reproducibility",
    "task_validity",
)
DEFAULT_THRESHOLD = 0.65


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate check.

    Attributes:
        scores: The gated scores, axis name to value.
        thresholds: The threshold each gated score had to exceed (strictly).
        weakest_axis: The gated axis with the smallest margin ``score - threshold``.
        passed: True iff every gated score is above its threshold.
        failing_axes: Gated axes at or below their threshold, weakest first.
        extras: Scores reported beside the verdict but not gated (``psnr``, ``ssim``, ``delta_psnr``, ...).
        real_baseline: Reality's own score on each simulator axis, on the same probe set: each real take held out
            and scored against the other takes as the model is. 1 on every axis for a probe set of one take
            (reality is its own reference); below 1 in a stochastic world, where it shows how far one real sample
            sits from reality's spread.
        intervals: A confidence interval ``(low, high)`` of each gated simulator axis, by bootstrap over probe
            episodes at ``confidence_level`` (see :mod:`simgate_tracking.confidence`); empty when none was taken.
        confidence_level: The level of ``intervals``.
        real_baseline_intervals: The same intervals for reality's own score, with real takes.
    """

    scores: dict[str, float]
    thresholds: dict[str, float]
    weakest_axis: str
    passed: bool
    failing_axes: tuple[str, ...]
    extras: dict[str, float] = field(default_factory=dict)
    real_baseline: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)
    confidence_level: float = DEFAULT_LEVEL
    real_baseline_intervals: dict[str, Interval] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        """``"pass"``, ``"fail"`` or ``"inconclusive"``: the gate judged on :attr:`intervals`.

        ``"pass"`` when every gated axis's interval lies above its threshold, ``"fail"`` when one lies at or below
        it, else ``"inconclusive"``: the probe set cannot tell the model from the threshold. A gated score without an
        interval is judged on its value, so without intervals the verdict is :attr:`passed`'s.
        """
        return gate_verdict(self.scores, self.thresholds, self.intervals)

    @property
    def inconclusive_axes(self) -> tuple[str, ...]:
        """Gated axes whose interval holds their threshold, weakest first."""
        straddling = (name for name, (low, high) in self.intervals.items() if low <= self.thresholds[name] < high)
        return tuple(sorted(straddling, key=self.margins.__getitem__))

    def score_text(self, axis: str) -> str:
        """An axis's score with its interval when the result has one: ``0.640 [0.580, 0.700]``."""
        interval = self.intervals.get(axis)
        ends = "" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]"
        return f"{self.scores[axis]:.3f}{ends}"

    @property
    def margins(self) -> dict[str, float]:
        """Score minus threshold for every gated axis."""
        return {name: self.scores[name] - self.thresholds[name] for name in self.scores}

    @property
    def min_axis(self) -> float:
        """The score of the weakest axis."""
        return self.scores[self.weakest_axis]

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict."""
        return {
            "scores": dict(self.scores),
            "thresholds": dict(self.thresholds),
            "weakest_axis": self.weakest_axis,
            "passed": self.passed,
            "failing_axes": list(self.failing_axes),
            "extras": dict(self.extras),
            "real_baseline": dict(self.real_baseline),
            "verdict": self.verdict,
            "intervals": {name: list(ends) for name, ends in self.intervals.items()},
            "confidence_level": self.confidence_level,
            "real_baseline_intervals": {name: list(ends) for name, ends in self.real_baseline_intervals.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Rebuild a result from :meth:`to_dict` output."""
        return cls(
            scores={k: float(v) for k, v in data["scores"].items()},
            thresholds={k: float(v) for k, v in data["thresholds"].items()},
            weakest_axis=str(data["weakest_axis"]),
            passed=bool(data["passed"]),
            failing_axes=tuple(data["failing_axes"]),
            extras={k: float(v) for k, v in data.get("extras", {}).items()},
            # reports written before real takes existed scored against one take: reality's own score is 1
            real_baseline={
                k: float(v) for k, v in data.get("real_baseline", _one_take_baseline(data["scores"])).items()
            },
            # reports written before intervals existed judged point scores only
            intervals=_intervals(data.get("intervals")),
            confidence_level=float(data.get("confidence_level", DEFAULT_LEVEL)),
            real_baseline_intervals=_intervals(data.get("real_baseline_intervals")),
        )

    def to_json(self) -> str:
        """The result as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GateResult:
        """Rebuild a result from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        rows = [f"simulator gate: {self.verdict_word()} (weakest axis: {self.weakest_axis})"]
        # reality's own score is shown where it says something: real takes of a stochastic world
        shown = any(value != 1.0 for value in self.real_baseline.values())
        for name, score in self.scores.items():
            marks = ["<- weakest"] if name == self.weakest_axis else (["fail"] if name in self.failing_axes else [])
            marks += ["inconclusive"] if name in self.inconclusive_axes else []
            reality = f"  (reality {self.real_baseline[name]:.3f})" if shown and name in self.real_baseline else ""
            low, high = self.intervals.get(name, (math.nan, math.nan))
            ends = f" [{low:.3f}, {high:.3f}]" if name in self.intervals else " " * 15 if self.intervals else ""
            rows.append(
                f"  {name:<24}{score:7.3f}{ends}  > {self.thresholds[name]:.2f}{reality}  {', '.join(marks)}".rstrip()
            )
        rows.extend(f"  {name:<24}{value:7.3f}  (not gated)" for name, value in self.extras.items())
        return "\n".join(rows)

    def verdict_word(self) -> str:
        """``PASS`` or ``FAIL``; ``INCONCLUSIVE`` with the level and the point scores' verdict when intervals say so.

        Example:
            >>> result = SimulatorGate().evaluate({"controllability": 0.7}, intervals={"controllability": (0.6, 0.8)})
            >>> result.verdict_word()
            'INCONCLUSIVE at 95% (PASS on point scores)'
        """
        strict = "PASS" if self.passed else "FAIL"
        if self.verdict != "inconclusive":
            return strict
        return f"INCONCLUSIVE at {self.confidence_level:.0%} ({strict} on point scores)"


def _check_threshold(name: str, value: Any) -> float:
    near = difflib.get_close_matches(name, AXES, n=1, cutoff=0.8)
    if name not in AXES and near:
        # a misspelled axis would otherwise gate a score that never comes, and its real threshold would be ignored
        raise ValueError(
            f"Expected a threshold key among {AXES} or a reported score but got {name!r}: did you mean {near[0]!r}?"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Expected threshold for `{name}` to be a finite float but got {value!r}")
    if name in AXES and not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected threshold for `{name}` to be a float in [0, 1] but got {value}")
    return float(value)


class SimulatorGate:
    """Pass or fail a world model as a simulator: ``passed = min(scores) > threshold``.

    The gate judges every simulator axis present in the scores (see :data:`AXES`), plus any other score given an
    explicit threshold (``threshold={"psnr": 25.0}`` gates frame quality too; by default it does not). The weakest
    axis is the one with the smallest margin above its threshold. A NaN score counts as 0.

    Args:
        threshold: One threshold for every axis, or a mapping of per-axis thresholds; axes it leaves out keep
            ``default_threshold``.
        default_threshold: The threshold of axes a mapping leaves out.

    Raises:
        ValueError: If a threshold is not finite, or an axis threshold is outside [0, 1].

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> metrics = {
        ...     "controllability": 0.71,
        ...     "temporal_consistency": 0.83,
        ...     "object_persistence": 0.64,
        ...     "reset_reproducibility": 0.76,
        ... }
        >>> result = SimulatorGate(threshold=0.65).evaluate(metrics)
        >>> print({"weakest_axis": result.weakest_axis, "simulator_ok": result.passed})
        {'weakest_axis': 'object_persistence', 'simulator_ok': False}
    """

    def __init__(
        self, threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD, default_threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        self.default_threshold = _check_threshold("default_threshold", default_threshold)
        if not 0.0 <= self.default_threshold <= 1.0:
            raise ValueError(
                f"Expected argument `default_threshold` to be a float in [0, 1] but got {default_threshold}"
            )
        if isinstance(threshold, Mapping):
            for name in threshold:
                if not isinstance(name, str) or not name:
                    raise ValueError(
                        f"Expected the keys of `threshold` to be axis or score names (non-empty str) but got {name!r}"
                    )
            self.thresholds = {name: _check_threshold(name, value) for name, value in threshold.items()}
        else:
            value = _check_threshold("threshold", threshold)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Expected argument `threshold` to be a float in [0, 1] but got {threshold}")
            self.default_threshold, self.thresholds = value, {}

    def threshold_for(self, name: str) -> float:
        """The threshold ``name`` must exceed."""
        return self.thresholds.get(name, self.default_threshold)

    def is_gated(self, name: str) -> bool:
        """Whether a score named ``name`` takes part in the verdict."""
        return name in AXES or name in self.thresholds

    def evaluate(
        self,
        scores: Mapping[str, Any],
        real_baseline: Mapping[str, Any] | None = None,
        intervals: Mapping[str, tuple[float, float]] | None = None,
        confidence_level: float = DEFAULT_LEVEL,
        real_baseline_intervals: Mapping[str, tuple[float, float]] | None = None,
    ) -> GateResult:
        """Judge a dict of scores (floats or 0-dim tensors).

        Args:
            scores: Axis name to score.
            real_baseline: Reality's own score per simulator axis (see :attr:`GateResult.real_baseline`); default
                1 on every gated simulator axis, as for a probe set of one real take.
            intervals: Confidence interval ``(low, high)`` per gated score (see :attr:`GateResult.intervals`); the
                verdict judges them (:attr:`GateResult.verdict`). Default none: the verdict is the point scores'.
            confidence_level: The level of ``intervals``, in (0, 1).
            real_baseline_intervals: Intervals of reality's own score per axis.

        Raises:
            ValueError: If no gated axis is among the scores, or an interval is not ``(low, high)`` with
                ``low <= high`` for a gated score.
        """
        values = {str(name): _as_float(value) for name, value in scores.items()}
        ordered = [name for name in AXES if name in values] + [
            name for name in values if name not in AXES and self.is_gated(name)
        ]
        if not ordered:
            raise ValueError(f"Expected scores for at least one of {AXES} but got keys {sorted(values)}")
        gated = {name: values[name] for name in ordered}
        thresholds = {name: self.threshold_for(name) for name in ordered}
        margins = {name: gated[name] - thresholds[name] for name in ordered}
        failing = tuple(sorted((name for name in ordered if margins[name] <= 0), key=margins.__getitem__))
        return GateResult(
            scores=gated,
            thresholds=thresholds,
            weakest_axis=min(ordered, key=margins.__getitem__),
            passed=not failing,
            failing_axes=failing,
            extras={name: value for name, value in values.items() if name not in gated},
            real_baseline=(
                _one_take_baseline(gated)
                if real_baseline is None
                else {str(name): _as_float(value) for name, value in real_baseline.items()}
            ),
            intervals=_checked_intervals(intervals or {}, gated, "intervals"),
            confidence_level=check_level(confidence_level, "confidence_level"),
            real_baseline_intervals=_checked_intervals(real_baseline_intervals or {}, AXES, "real_baseline_intervals"),
        )


def _checked_intervals(intervals: Mapping[str, Any], names: Any, field_name: str) -> dict[str, Interval]:
    """``(low, high)`` floats per name, ``low <= high``, for names among ``names`` only."""
    checked = {}
    for name, ends in intervals.items():
        values = tuple(_as_float(end) for end in ends) if isinstance(ends, (tuple, list)) else ()
        if name not in names or len(values) != 2 or values[0] > values[1]:
            raise ValueError(
                f"Expected `{field_name}` to map gated scores {tuple(names)} to (low, high) with low <= high but got "
                f"{name!r}: {ends!r}"
            )
        checked[str(name)] = (values[0], values[1])
    return checked


def _intervals(data: Any) -> dict[str, Interval]:
    """Intervals as a report stores them (lists of two numbers); none in reports older than intervals."""
    return {str(name): (float(ends[0]), float(ends[1])) for name, ends in (data or {}).items()}


def _one_take_baseline(scores: Mapping[str, Any]) -> dict[str, float]:
    """Reality's own score with one real take: 1 on every simulator axis, by definition."""
    return {name: 1.0 for name in scores if name in AXES}


def _as_float(value: Any) -> float:
    number = float(value.item() if hasattr(value, "item") else value)
    return number if math.isfinite(number) else 0.0
