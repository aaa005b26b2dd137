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
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from simgate_tracking.alerts import Alert
from simgate_tracking.confidence import episodes_needed
from simgate_tracking.gate import GateResult

if TYPE_CHECKING:
    from simgate_tracking.planning.result import PlanningResult

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


def verdict_text(result: GateResult) -> str:
    """PASS, FAIL or INCONCLUSIVE and the weakest axis with its score, interval and threshold, without the step.

    An inconclusive verdict names the weakest axis whose interval holds its threshold.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> verdict_text(SimulatorGate().evaluate({"controllability": 0.71, "object_persistence": 0.64}))
        'FAIL, weakest object_persistence 0.640 (threshold 0.65)'
        >>> scores = {"controllability": 0.71, "object_persistence": 0.64}
        >>> intervals = {"controllability": (0.66, 0.77), "object_persistence": (0.58, 0.70)}
        >>> verdict_text(SimulatorGate().evaluate(scores, intervals=intervals))
        'INCONCLUSIVE, weakest object_persistence 0.640 [0.580, 0.700] (threshold 0.65)'
    """
    verdict = result.verdict
    axis = result.inconclusive_axes[0] if verdict == "inconclusive" else result.weakest_axis
    return f"{verdict.upper()}, weakest {axis} {result.score_text(axis)} (threshold {result.thresholds[axis]:.2f})"


def episodes_needed_line(report: dict[str, Any]) -> str | None:
    """How many probe episodes would settle the weakest axis's side of its threshold, for ``simgate report``.

    From the report's per-episode scores of the weakest axis (see :func:`simgate_tracking.episodes_needed`): the
    episodes that would give an interval as wide as twice the axis's distance to its threshold. None when the report
    has no intervals, fewer than two scored episodes of that axis, or a score exactly at its threshold.

    Example:
        >>> report = {
        ...     "scores": {"object_persistence": 0.69}, "thresholds": {"object_persistence": 0.65},
        ...     "weakest_axis": "object_persistence", "passed": True, "failing_axes": [],
        ...     "intervals": {"object_persistence": [0.61, 0.76]}, "confidence_level": 0.95,
        ...     "episode_scores": {"object_persistence": [0.9, 0.5, 0.7, 0.8, 0.6, 0.66, 0.52, 0.84]},
        ... }
        >>> print(episodes_needed_line(report))
          episodes needed: about 53 for a 95% interval of object_persistence 0.080 wide, twice its margin +0.040 (now 8)
    """
    result = GateResult.from_dict(report)
    axis = result.weakest_axis
    table = report.get("episode_scores")
    values = table.get(axis) if isinstance(table, dict) else None
    if not result.intervals or not isinstance(values, list):
        return None
    scores = torch.tensor([math.nan if v is None else float(v) for v in values], dtype=torch.float64)
    margin = result.margins[axis]
    scored = int((~scores.isnan()).sum())
    if scored < 2 or margin == 0 or abs(margin) > 0.5:
        return None
    needed = episodes_needed(scores, width=2 * abs(margin), level=result.confidence_level)
    return (
        f"  episodes needed: about {needed} for a {result.confidence_level:.0%} interval of {axis} "
        f"{2 * abs(margin):.3f} wide, twice its margin {margin:+.3f} (now {scored})"
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


def __getattr__(name: str) -> Any:
    # ``PlanningResult`` lives with the planning probe now; its old import path keeps working
    if name == "PlanningResult":
        from simgate_tracking.planning.result import PlanningResult

        return PlanningResult
    raise AttributeError(f"module 'simgate_tracking.report' has no attribute {name!r}")
