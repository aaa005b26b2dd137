"""One gate check as data: what the callback hands to every gate logger and writes as a JSON report."""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from simgate_tracking.alerts import Alert
from simgate_tracking.gate import GateResult

REPORT_VERSION = 1
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")
SkipFn = Callable[[Path, str], None]


@dataclass(frozen=True)
class RolloutSamples:
    """Rollouts of a few fixed probe episodes, for dashboards. All tensors on the CPU, frames float in [0, 1].

    Attributes:
        episode_index: The episodes' indices in the probe set.
        real: (S, K+1, T, C, H, W) real futures of every branch.
        model: (S, K+1, T, C, H, W) the model's rollouts of the same branches.
        masks: (S, T, M, H, W) bool object masks of the reference branch, or None.
    """

    episode_index: list[int]
    real: Tensor
    model: Tensor
    masks: Tensor | None = None


@dataclass(frozen=True)
class PlanningResult:
    """What the closed-loop planning probe did: success with the world model beside success with reality.

    The same planner plays every episode twice in the real environment: once imagining candidate futures with the
    world model, once imagining them with the real environment (the baseline, the best the planner can do).

    Attributes:
        success: Per episode, whether the planner imagining with the world model reached the goal.
        success_real: Per episode, whether the planner imagining with the real environment reached it.
        steps: Real steps each episode took with the world model (the step limit when it failed).
        steps_real: The same with the real environment.
        sample_index: The episodes whose frames are kept, for dashboards.
        expected: (S, T, C, H, W) after every real step of those episodes, the frame the model expected, or None.
        happened: (S, T, C, H, W) the real frame after that step (the last one repeated once the episode ended).

    Example:
        >>> result = PlanningResult(success=[True, False], success_real=[True, True], steps=[4, 12], steps_real=[4, 6])
        >>> result.scores()
        {'planning_success': 0.5, 'planning_success_real': 1.0}
        >>> result.summary()
        'planning: 1/2 episodes reach the goal with the model, 2/2 with the real environment'
    """

    success: list[bool]
    success_real: list[bool]
    steps: list[int]
    steps_real: list[int]
    sample_index: list[int] = field(default_factory=list)
    expected: Tensor | None = None
    happened: Tensor | None = None

    @property
    def success_rate(self) -> float:
        """The fraction of episodes that reached the goal with the world model."""
        return sum(self.success) / max(len(self.success), 1)

    @property
    def success_rate_real(self) -> float:
        """The fraction of episodes that reached the goal with the real environment."""
        return sum(self.success_real) / max(len(self.success_real), 1)

    def scores(self) -> dict[str, float]:
        """``planning_success`` and ``planning_success_real``, as the gate and the dashboards take them."""
        return {"planning_success": self.success_rate, "planning_success_real": self.success_rate_real}

    def summary(self) -> str:
        """One line: how many episodes reached the goal with the model and with the real environment."""
        n = len(self.success)
        return (
            f"planning: {sum(self.success)}/{n} episodes reach the goal with the model, "
            f"{sum(self.success_real)}/{n} with the real environment"
        )

    def to_report(self) -> dict[str, Any]:
        """Success rates and per-episode outcomes, JSON-ready."""
        return {
            "success_rate": self.success_rate,
            "success_rate_real": self.success_rate_real,
            "success": list(self.success),
            "success_real": list(self.success_real),
            "steps": list(self.steps),
            "steps_real": list(self.steps_real),
        }

    def as_rollouts(self) -> RolloutSamples | None:
        """The kept episodes as sample rollouts, "real" what happened and "model" what the model expected."""
        if self.expected is None or self.happened is None:
            return None
        return RolloutSamples(list(self.sample_index), real=self.happened[:, None], model=self.expected[:, None])


def verdict_text(result: GateResult) -> str:
    """PASS or FAIL and the weakest axis with its score and threshold: a check's verdict without its step.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> verdict_text(SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64}))
        'FAIL, weakest object_persistence 0.640 (threshold 0.65)'
    """
    weakest = result.weakest_axis
    return (
        f"{'PASS' if result.passed else 'FAIL'}, weakest {weakest} {result.scores[weakest]:.3f} "
        f"(threshold {result.thresholds[weakest]:.2f})"
    )


@dataclass(frozen=True)
class GateCheck:
    """Everything one gate check produced.

    Attributes:
        result: The verdict.
        step: The trainer's global step (the x axis of every curve).
        epoch: The trainer's epoch.
        manifest_hash: The probe set's hash, so curves are known to compare like with like.
        probe_name: The probe set's name.
        episode_scores: Per-episode scores by axis, plus ``episode_index``.
        alerts: Alerts this check raised.
        samples: Sample rollouts for media, or None.
        planning: What the planning probe did, on the checks it ran at, or None.
        log_step: The x of this check on the dashboards: the step the Trainer's loggers put the validation run's own
            metrics at (Lightning logs them one step behind ``global_step`` at the end of an epoch); None: ``step``.
    """

    result: GateResult
    step: int
    epoch: int
    manifest_hash: str
    probe_name: str = "probe"
    episode_scores: dict[str, list[float]] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()
    samples: RolloutSamples | None = None
    planning: PlanningResult | None = None
    log_step: int | None = None

    @property
    def dashboard_step(self) -> int:
        """Where every dashboard puts this check: ``log_step`` when the Trainer gave one, else ``step``."""
        return self.step if self.log_step is None else self.log_step

    def to_report(self) -> dict[str, Any]:
        """The JSON report: manifest hash, thresholds, scores, weakest axis, verdict, per-episode scores, alerts."""
        report = {
            "report_version": REPORT_VERSION,
            "step": self.step,
            "epoch": self.epoch,
            "probe_name": self.probe_name,
            "manifest_hash": self.manifest_hash,
            **self.result.to_dict(),
            "episode_scores": self.episode_scores,
            "alerts": [alert.to_dict() for alert in self.alerts],
        }
        if self.planning is not None:
            report["planning"] = self.planning.to_report()
        return report

    def write(self, directory: str | os.PathLike[str], prefix: str = "check") -> Path:
        """Write the report as ``<directory>/<prefix>-<step>.json`` and return its path.

        ``simgate report`` reads the ``check-*`` reports of a fit; ``trainer.validate`` writes ``validate-*`` ones.
        The file appears whole or not at all: a failed write (a full disk) leaves no partial or temporary file.

        Raises:
            ValueError: If ``step`` is not an int or ``prefix`` not a plain name, so the file stays in ``directory``.
            OSError: If the file cannot be written.
        """
        if not isinstance(self.step, int) or isinstance(self.step, bool):
            raise ValueError(f"Expected `step` to be an int, the trainer's global step, but got {self.step!r}")
        if not _PLAIN_NAME.fullmatch(prefix):
            raise ValueError(
                f"Expected argument `prefix` to be a plain name (letters, digits, _ or -) but got {prefix!r}"
            )
        path = Path(directory) / f"{prefix}-{self.step}.json"
        text = json.dumps(_finite(self.to_report()), indent=2, sort_keys=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        try:
            tmp.write_text(text)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


def _finite(value: Any) -> Any:
    """JSON has no NaN: episodes with nothing to score become null."""
    if isinstance(value, float):
        return value if value == value else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def read_reports(directory: str | os.PathLike[str], on_skip: SkipFn | None = None) -> list[dict[str, Any]]:
    """Every ``check-<step>.json`` under ``directory`` (searched recursively), ordered by step.

    A file that is not a gate report (truncated, empty, binary, not a JSON object, a score that is not a number, a
    step that is not an int), or a directory of that name, is skipped: ``on_skip(path, reason)`` is called, by
    default a warning. Scores reported beside the verdict and reality's own scores may be null (NaN when written).
    """
    reports = []
    for path in sorted(Path(directory).rglob("check-*.json")):
        report, reason = _read_report(path)
        if report is not None:
            reports.append(report)
        elif on_skip is not None:
            on_skip(path, reason)
        else:
            warnings.warn(f"Skipping {path}: {reason}", UserWarning, stacklevel=2)
    return sorted(reports, key=lambda r: (r["step"], r.get("epoch", 0)))


def _read_report(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The report in ``path``, or None and why it is not one."""
    if not path.is_file():
        return None, "not a file"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # unreadable, binary (UnicodeDecodeError) or not JSON (JSONDecodeError)
        return None, f"not readable as JSON ({type(err).__name__}: {err})"
    problem = report_problem(report)
    if problem:
        return None, problem
    for key in ("extras", "real_baseline"):  # JSON has no NaN: the report wrote null
        if key in report:
            report[key] = {name: math.nan if v is None else v for name, v in report[key].items()}
    return report, ""


def report_problem(report: Any) -> str | None:
    """What keeps ``report`` from being a gate report :func:`read_reports` can use, or None if nothing does.

    Example:
        >>> report_problem({"step": "10", "scores": {}})
        '`step` is not an int but str'
        >>> report_problem([1, 2])
        'not a JSON object but a list'
    """
    if not isinstance(report, dict):
        return f"not a JSON object but a {type(report).__name__}"
    for key in ("step", "epoch"):
        value = report.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            return f"`{key}` is not an int but {type(value).__name__}"
    problem = _table_problem(report, "scores", required=True) or _table_problem(report, "thresholds", required=True)
    problem = problem or _table_problem(report, "extras") or _table_problem(report, "real_baseline")
    if problem:
        return problem
    if set(report["scores"]) - set(report["thresholds"]):
        return "a score has no threshold"
    if report.get("weakest_axis") not in report["scores"]:
        return "`weakest_axis` is not one of its scores"
    if not isinstance(report.get("passed"), bool) or not isinstance(report.get("failing_axes"), list):
        return "`passed` or `failing_axes` is missing"
    return None


def _table_problem(report: dict[str, Any], key: str, required: bool = False) -> str | None:
    """Gated scores and thresholds must be numbers; scores beside them and reality's may be null (NaN)."""
    table = report.get(key, None if required else {})
    if not isinstance(table, dict) or (required and not table):
        return f"`{key}` is not a {'non-empty ' if required else ''}JSON object"
    for name, value in table.items():
        if not (_is_number(value) or (value is None and not required)):
            return f"`{key}.{name}` is not a number but {json.dumps(value)}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
