"""Weakest-axis alerts: a pure decision over the history of gate checks, rendered by every gate logger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from simgate_tracking._utils import check_int
from simgate_tracking.gate import GateResult

AlertKind = Literal["gate_failed", "gate_inconclusive", "weakest_changed", "axis_dropped"]
AlertLevel = Literal["WARN", "ERROR"]
_VERDICT_WORDS = {"pass": "passed", "fail": "failed", "inconclusive": "inconclusive"}


@dataclass(frozen=True)
class Alert:
    """One alert: what happened, on which axis, at which step.

    Attributes:
        kind: ``gate_failed``, ``gate_inconclusive``, ``weakest_changed`` or ``axis_dropped``.
        axis: The axis the alert is about.
        score: The axis's score at this check.
        threshold: The axis's threshold.
        step: The training step of the check.
        level: ``ERROR`` when the gate failed, else ``WARN``.
        title: One line for a notification.
        text: The full message: axis, score, threshold and step.
    """

    kind: AlertKind
    axis: str
    score: float
    threshold: float
    step: int
    level: AlertLevel
    title: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {k: getattr(self, k) for k in ("kind", "axis", "score", "threshold", "step", "level", "title", "text")}


class AlertPolicy:
    """Decide which alerts a new gate check raises.

    Alerts fire when the gate fails (ERROR, about the weakest axis), when its verdict is inconclusive (WARN, about the
    weakest axis whose confidence interval holds its threshold: the probe set cannot tell), when the weakest axis
    changes (WARN), and when an axis falls more than ``drop_margin`` below its best score so far (WARN). A result
    with intervals fails only when an interval lies at or below its threshold (:attr:`GateResult.verdict`).
    The same (kind, axis) pair is not repeated within ``cooldown_checks`` checks.

    Args:
        drop_margin: How far below its best an axis may fall before it alerts.
        cooldown_checks: Checks to wait before repeating an alert of the same kind for the same axis.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> policy, gate = AlertPolicy(), SimulatorGate()
        >>> policy.update(gate.evaluate({"controllability": 0.9, "object_persistence": 0.8}), step=10)
        []
        >>> [a.title for a in policy.update(gate.evaluate({"controllability": 0.9, "object_persistence": 0.5}), 20)]
        ['simulator gate failed: object_persistence 0.500 <= 0.65', 'object_persistence fell 0.300 below its best']
    """

    def __init__(self, drop_margin: float = 0.1, cooldown_checks: int = 3) -> None:
        if not isinstance(drop_margin, (int, float)) or isinstance(drop_margin, bool) or not 0 < drop_margin <= 1:
            raise ValueError(f"Expected argument `drop_margin` to be a float in (0, 1] but got {drop_margin!r}")
        check_int(cooldown_checks, "cooldown_checks", 0)
        self.drop_margin = float(drop_margin)
        self.cooldown_checks = cooldown_checks
        self.best: dict[str, float] = {}
        self.last_weakest: str | None = None
        self.checks = 0
        self._last_fired: dict[str, int] = {}

    def update(self, result: GateResult, step: int) -> list[Alert]:
        """Record a check and return the alerts it raises."""
        self.checks += 1
        candidates: list[Alert] = []
        weakest = result.weakest_axis
        if result.verdict == "fail":
            candidates.append(self._alert("gate_failed", result, weakest, step, "simulator gate failed"))
        elif result.verdict == "inconclusive":
            axis = result.inconclusive_axes[0]
            candidates.append(self._alert("gate_inconclusive", result, axis, step, "simulator gate inconclusive"))
        if self.last_weakest is not None and weakest != self.last_weakest:
            candidates.append(self._alert("weakest_changed", result, weakest, step, f"weakest axis is now {weakest}"))
        for axis, score in result.scores.items():
            best = self.best.get(axis)
            if best is not None and best - score > self.drop_margin:
                candidates.append(self._alert("axis_dropped", result, axis, step, f"{axis} fell below its best"))
            self.best[axis] = score if best is None else max(best, score)
        self.last_weakest = weakest
        return [alert for alert in candidates if self._may_fire(alert)]

    def _may_fire(self, alert: Alert) -> bool:
        key = f"{alert.kind}/{alert.axis}"
        last = self._last_fired.get(key)
        if last is not None and self.checks - last <= self.cooldown_checks:
            return False
        self._last_fired[key] = self.checks
        return True

    def _alert(self, kind: AlertKind, result: GateResult, axis: str, step: int, headline: str) -> Alert:
        score, threshold = result.scores[axis], result.thresholds[axis]
        shown = result.score_text(axis)
        if kind == "gate_failed":
            title = f"simulator gate failed: {axis} {shown} <= {threshold:.2f}"
        elif kind == "gate_inconclusive":
            title = f"simulator gate inconclusive: {axis} {shown} holds {threshold:.2f}"
        elif kind == "axis_dropped":
            title = f"{axis} fell {self.best[axis] - score:.3f} below its best"
        else:
            title = headline
        text = (
            f"{headline} at step {step}: {axis} = {shown} (threshold {threshold:.2f}, "
            f"gate {_VERDICT_WORDS[result.verdict]}; failing: {', '.join(result.failing_axes) or 'none'})"
        )
        if kind == "gate_inconclusive":
            text += (
                f"; the {result.confidence_level:.0%} interval holds the threshold: score more probe episodes "
                "(see simgate_tracking.episodes_needed) or judge at a lower level"
            )
        return Alert(kind, axis, score, threshold, step, "ERROR" if kind == "gate_failed" else "WARN", title, text)

    def state_dict(self) -> dict[str, Any]:
        """The policy's memory, for checkpoints."""
        return {
            "best": dict(self.best),
            "last_weakest": self.last_weakest,
            "checks": self.checks,
            "last_fired": dict(self._last_fired),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; keys an older checkpoint lacks keep their defaults."""
        self.best = dict(state.get("best", {}))
        self.last_weakest = state.get("last_weakest")
        self.checks = int(state.get("checks", 0))
        self._last_fired = dict(state.get("last_fired", {}))
