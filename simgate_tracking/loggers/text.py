"""A gate check as text: the verdict line, alert messages and tables, as markdown for dashboards' text panels."""

from __future__ import annotations

import math
from collections.abc import Sequence

from simgate_tracking.alerts import Alert
from simgate_tracking.report import GateCheck, verdict_text


def verdict_line(check: GateCheck) -> str:
    """One line: step, PASS or FAIL, and the weakest axis with its score and threshold.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64})
        >>> verdict_line(GateCheck(result, step=120, epoch=3, manifest_hash="ab12"))
        'step 120: FAIL, weakest object_persistence 0.640 (threshold 0.65)'
    """
    return f"step {check.step}: {verdict_text(check.result)}"


def planning_line(check: GateCheck) -> str:
    """The caption of the planning probe's video: step, success with the model and with reality, what shows.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> from simgate_tracking.report import PlanningResult
        >>> planning = PlanningResult([True, False], [True, True], steps=[3, 9], steps_real=[3, 4])
        >>> result = SimulatorGate().evaluate({"controllability": 0.9})
        >>> print(planning_line(GateCheck(result, step=120, epoch=3, manifest_hash="ab12", planning=planning)))
        step 120, planning: 1/2 episodes reach the goal with the model, 2/2 with the real environment
        real: what happened; model: the frame the model expected after each chosen action
    """
    summary = "no planning" if check.planning is None else check.planning.summary()
    return (
        f"step {check.step}, {summary}\n"
        "real: what happened; model: the frame the model expected after each chosen action"
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats with three decimals.

    Example:
        >>> print(markdown_table(["axis", "score"], [["controllability", 0.71]]))
        | axis | score |
        | --- | --- |
        | controllability | 0.710 |
    """
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines.extend("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows)
    return "\n".join(lines)


def scores_markdown(check: GateCheck) -> str:
    """The verdict line, then a table of every gated axis (score, threshold, status) and the frame-quality extras.

    With confidence intervals the table gains an interval column, and an axis whose interval holds its threshold
    has the status "inconclusive".

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64, "psnr": 31.0})
        >>> print(scores_markdown(GateCheck(result, step=120, epoch=3, manifest_hash="ab12cd34ef")))
        **step 120: FAIL, weakest object_persistence 0.640 (threshold 0.65)** (probe `probe`, manifest `ab12cd34ef`)
        <BLANKLINE>
        | axis | score | threshold | status |
        | --- | --- | --- | --- |
        | controllability | 0.710 | 0.650 | pass |
        | object_persistence | 0.640 | 0.650 | FAIL (weakest) |
        | psnr | 31.000 |  | not gated |
    """
    result = check.result
    level = f"{result.confidence_level:.0%} interval"
    rows: list[list[object]] = []
    for axis, score in result.scores.items():
        status = "FAIL" if axis in result.failing_axes else "pass"
        status = "inconclusive" if axis in result.inconclusive_axes else status
        interval = [_interval(result.intervals.get(axis))] if result.intervals else []
        weakest = " (weakest)" if axis == result.weakest_axis else ""
        rows.append([axis, score, *interval, result.thresholds[axis], status + weakest])
    rows.extend(
        [name, value, *([""] if result.intervals else []), "", "not gated"] for name, value in result.extras.items()
    )
    head = f"**{verdict_line(check)}** (probe `{check.probe_name}`, manifest `{check.manifest_hash[:12]}`)"
    columns = ["axis", "score", *([level] if result.intervals else []), "threshold", "status"]
    return head + "\n\n" + markdown_table(columns, rows)


def _interval(ends: tuple[float, float] | None) -> str:
    return "" if ends is None else f"[{ends[0]:.3f}, {ends[1]:.3f}]"


def episode_table(check: GateCheck) -> tuple[list[str], list[list[object]]]:
    """The per-episode scores as (columns, rows): ``episode`` first, then one column per axis.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> result = SimulatorGate().evaluate({"controllability": 0.8})
        >>> scores = {"episode_index": [0, 1], "controllability": [0.9, 0.7]}
        >>> episode_table(GateCheck(result, step=1, epoch=0, manifest_hash="0", episode_scores=scores))
        (['episode', 'controllability'], [[0, 0.9], [1, 0.7]])
    """
    table = dict(check.episode_scores)
    axes = [name for name in table if name != "episode_index"]
    count = max((len(values) for values in table.values()), default=0)
    index = table.get("episode_index", list(range(count)))
    rows: list[list[object]] = [[int(index[i]), *(float(table[axis][i]) for axis in axes)] for i in range(count)]
    return ["episode", *axes], rows


def alerts_markdown(alerts: Sequence[Alert]) -> str:
    """Alerts as markdown: per alert, level and title in bold, then the full text naming axis, score, threshold, step.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> from simgate_tracking.alerts import AlertPolicy
        >>> result = SimulatorGate().evaluate({"task_validity": 0.5})
        >>> print(alerts_markdown(AlertPolicy().update(result, step=40)))
        **ERROR: simulator gate failed: task_validity 0.500 <= 0.65**
        <BLANKLINE>
        simulator gate failed at step 40: task_validity = 0.500 (threshold 0.65, gate failed; failing: task_validity)
    """
    return "\n\n".join(f"**{alert.level}: {alert.title}**\n\n{alert.text}" for alert in alerts)
