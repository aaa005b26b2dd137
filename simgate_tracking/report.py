"""One gate check as data: what the callback hands to every gate logger and writes as a JSON report."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from simgate_tracking.alerts import Alert
from simgate_tracking.gate import GateResult

REPORT_VERSION = 1


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

    def write(self, directory: str | os.PathLike[str]) -> Path:
        """Write the report as ``<directory>/check-<step>.json`` and return its path."""
        path = Path(directory) / f"check-{self.step}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_finite(self.to_report()), indent=2, sort_keys=True))
        tmp.replace(path)
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


def read_reports(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every ``check-<step>.json`` under ``directory`` (searched recursively), ordered by step."""
    reports = [json.loads(p.read_text()) for p in Path(directory).rglob("check-*.json")]
    return sorted(reports, key=lambda r: (r.get("step", 0), r.get("epoch", 0)))
