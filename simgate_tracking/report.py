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
    """

    result: GateResult
    step: int
    epoch: int
    manifest_hash: str
    probe_name: str = "probe"
    episode_scores: dict[str, list[float]] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()
    samples: RolloutSamples | None = None

    def to_report(self) -> dict[str, Any]:
        """The JSON report: manifest hash, thresholds, scores, weakest axis, verdict, per-episode scores, alerts."""
        return {
            "report_version": REPORT_VERSION,
            "step": self.step,
            "epoch": self.epoch,
            "probe_name": self.probe_name,
            "manifest_hash": self.manifest_hash,
            **self.result.to_dict(),
            "episode_scores": self.episode_scores,
            "alerts": [alert.to_dict() for alert in self.alerts],
        }

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
