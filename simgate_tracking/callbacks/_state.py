"""The gate callbacks' checkpoint state, read defensively: a bad field warns, naming it, and keeps its default.

A checkpoint is user data: edited by hand, written by another version, truncated by a full disk, or scored on another
probe set. None of that may abort ``fit``; what cannot be trusted is dropped with a warning that says which field,
what was expected and what was found.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from simgate_tracking.gate import GateResult
from simgate_tracking.report import report_problem

GATE = "SimulatorGateCallback"
STOPPING = "GateEarlyStopping"
GATE_FIELDS = ("history", "validation_runs", "alert_policy", "manifest_hash")
STOPPING_FIELDS = ("checks_seen", "failures_in_a_row", "stopped_at_step", "manifest_hash")
# the state key of versions that put the probe set's hash in it: their checkpoints still load
OLD_GATE_KEY = re.compile(r"^SimulatorGateCallback\{'probe': '([0-9a-f]{16})', 'every_n_epochs': (\d+)\}$")


@dataclass
class GateState:
    """What a gate callback restores from a checkpoint; the defaults are a fresh callback's."""

    history: list[GateResult] = field(default_factory=list)
    validation_runs: int = 0
    alert_policy: dict[str, Any] = field(default_factory=dict)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _warn_field(owner: str, name: str, expected: str, value: Any, default: Any) -> None:
    rank_zero_warn(
        f"{owner} checkpoint state: expected `{name}` to be {expected} but got {_shown(value)}; using the default "
        f"{default!r}"
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_step(value: Any) -> bool:
    return value is None or _is_count(value)


def _is_hash(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _checked(
    owner: str, state: Mapping[str, Any], name: str, ok: Callable[[Any], bool], expected: str, default: Any = None
) -> Any:
    """``state[name]`` if present and ``ok``; else ``default``, with a warning naming the field if it was present."""
    if name not in state:
        return default
    value = state[name]
    if ok(value):
        return value
    _warn_field(owner, name, expected, value, default)
    return default


def _as_state(owner: str, state: Any, fields: tuple[str, ...]) -> Mapping[str, Any]:
    """``state`` as a mapping (an empty one, with a warning, when it is none); unknown fields warn and are ignored."""
    if not isinstance(state, Mapping):
        rank_zero_warn(
            f"{owner} checkpoint state: expected a dict with {', '.join(map(repr, fields))} but got "
            f"{type(state).__name__} {_shown(state)}; starting from the defaults"
        )
        return {}
    unknown = sorted(str(name) for name in state if name not in fields)
    if unknown:
        rank_zero_warn(f"{owner} checkpoint state: ignoring unknown field(s) {', '.join(unknown)}")
    return state


def _history_problem(item: Any) -> str | None:
    problem = report_problem(item)
    if problem is not None:
        return problem
    for table in ("scores", "thresholds"):
        for name, value in item[table].items():
            if not math.isfinite(value):
                return f"`{table}.{name}` is not finite but {value!r}"
    return None


def _history(value: Any) -> list[GateResult]:
    """The stored history, or an empty one (with a warning naming the bad entry) if any entry cannot be trusted."""
    if not isinstance(value, list):
        _warn_field(GATE, "history", "a list of gate results", value, [])
        return []
    history = []
    for index, item in enumerate(value):
        problem = _history_problem(item)
        if problem is None:
            try:
                history.append(GateResult.from_dict(item))
                continue
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                problem = f"{type(err).__name__}: {err}"
        rank_zero_warn(
            f"{GATE} checkpoint state: expected `history[{index}]` to be a gate result but {problem}; starting a new "
            "history"
        )
        return []
    return history


def _alert_policy_problem(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"it is {type(value).__name__}"
    best, fired = value.get("best", {}), value.get("last_fired", {})
    if not isinstance(best, Mapping) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in best.values()
    ):
        return "`best` is not a table of finite scores"
    if not isinstance(fired, Mapping) or not all(_is_count(v) for v in fired.values()):
        return "`last_fired` is not a table of check counts"
    if not _is_count(value.get("checks", 0)) or not isinstance(value.get("last_weakest"), (str, type(None))):
        return "`checks` is not an int >= 0 or `last_weakest` not an axis name"
    return None


def read_gate_state(state: Any, manifest_hash: str) -> GateState:
    """The gate callback's checkpoint state, every bad field replaced by its default with a warning.

    A history scored on another probe set (its ``manifest_hash`` differs from ``manifest_hash``) is not continued:
    its curves would not compare with new checks. It warns and starts a new history and new alert memory.
    """
    state = _as_state(GATE, state, GATE_FIELDS)
    restored = GateState()
    restored.validation_runs = _checked(GATE, state, "validation_runs", _is_count, "an int >= 0", 0)
    stored = _checked(GATE, state, "manifest_hash", _is_hash, "None or a str")
    if stored is not None and stored != manifest_hash:
        rank_zero_warn(
            f"{GATE}: the checkpoint's gate history came from another probe set ({stored[:12]} vs "
            f"{manifest_hash[:12]}); its curves would not compare with new checks, so a new history starts here"
        )
        return restored
    restored.history = _history(state.get("history", []))
    policy = state.get("alert_policy", {})
    problem = _alert_policy_problem(policy)
    if problem is None:
        restored.alert_policy = dict(policy)
    else:
        rank_zero_warn(
            f"{GATE} checkpoint state: expected `alert_policy` to be an AlertPolicy state but {problem} "
            f"({_shown(policy)}); using a fresh alert policy"
        )
    return restored


def read_stopping_state(state: Any) -> dict[str, Any]:
    """``GateEarlyStopping``'s checkpoint state, every bad field replaced by its default with a warning."""
    state = _as_state(STOPPING, state, STOPPING_FIELDS)
    seen = _checked(STOPPING, state, "checks_seen", _is_count, "an int >= 0", 0)
    failures = _checked(STOPPING, state, "failures_in_a_row", _is_count, "an int >= 0", 0)
    if failures > seen:
        _warn_field(STOPPING, "failures_in_a_row", f"at most `checks_seen` = {seen}", failures, 0)
        failures = 0
    return {
        "checks_seen": seen,
        "failures_in_a_row": failures,
        "stopped_at_step": _checked(STOPPING, state, "stopped_at_step", _is_step, "None or an int >= 0"),
        "manifest_hash": _checked(STOPPING, state, "manifest_hash", _is_hash, "None or a str"),
    }


def adopt_old_gate_state(states: Any, key: str, manifest_hash: str, every_n_epochs: int) -> None:
    """Put a gate state saved under an older key (probe hash in it) under ``key``, so its checkpoints still load.

    The old entry of this probe set wins; else the only old entry with this ``every_n_epochs``, which then warns that
    it was scored on another probe set when it loads.
    """
    if not isinstance(states, dict) or key in states:
        return
    found = {}
    for name in states:
        match = OLD_GATE_KEY.match(name) if isinstance(name, str) else None
        if match is not None and int(match.group(2)) == every_n_epochs:
            found[match.group(1)] = name
    chosen = found.get(manifest_hash[:16]) or (next(iter(found.values())) if len(found) == 1 else None)
    if chosen is not None:
        states[key] = states[chosen]


def restart_reason(checks_seen: int, stored_hash: str | None, manifest_hash: str, history_length: int) -> str | None:
    """Why early stopping must count afresh: its counts came from another probe set, or from a history now gone."""
    if stored_hash is not None and stored_hash != manifest_hash:
        return f"its failure counts were scored on another probe set ({stored_hash[:12]} vs {manifest_hash[:12]})"
    if checks_seen > history_length:
        return f"it counted {checks_seen} checks but the gate's history holds {history_length}"
    return None
