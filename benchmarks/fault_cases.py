"""The attempts of ``python -m benchmarks.faults``, area by area: what a careless or hostile user would try."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.faults import Attempt

C, H, W, T, A, N, K = 3, 8, 8, 4, 2, 4, 3
WEIGHTS = torch.randn(A, C * H * W, generator=torch.Generator().manual_seed(0)) * 0.05


def _scored(metric: Any, *args: Any) -> Any:
    """``update`` then ``compute``, as a user reads a metric."""
    metric.update(*args)
    return metric.compute()


def simulate(context: Tensor, actions: Tensor, generator: Any = None) -> Tensor:
    """Reality of the small world: each action component pushes the frame along a fixed direction."""
    drift = actions.cumsum(dim=1) @ WEIGHTS.to(actions.dtype)
    return (context[:, -1:].flatten(2) + drift).clamp(0, 1).view(actions.shape[0], actions.shape[1], C, H, W)


def fields(seed: int = 1) -> dict[str, Tensor]:
    """The fields of a good probe set of the small world, with masks, outcomes and groups."""
    g = torch.Generator().manual_seed(seed)
    context = 0.25 + 0.5 * torch.rand(N, 1, C, H, W, generator=g)
    actions = torch.randn(N, K, T, A, generator=g)
    targets = torch.stack([simulate(context, actions[:, k]) for k in range(K)], dim=1)
    masks = torch.zeros(N, T, 1, H, W, dtype=torch.bool)
    masks[..., 2:5, 2:5] = True
    return {
        "context": context,
        "actions": actions,
        "targets": targets,
        "masks": masks,
        "visible": torch.ones(N, T, 1, dtype=torch.bool),
        "outcomes": torch.tensor([1.0, 0.0, 1.0, 0.0]),
        "seeds": torch.arange(N) + 100,
    }


def probe_set() -> Any:
    from simgate_tracking import ProbeSet

    return ProbeSet(**fields())


def _fails(result: Any) -> str | None:
    """A verdict of a broken world model must fail (or be inconclusive), never pass."""
    return "a broken world model passed the gate" if getattr(result, "passed", False) else None


def _task_judge_caught(result: Any) -> str | None:
    """With reality as the model and a broken task judge, the frame axes stay perfect and task validity fails."""
    frames = {name: score for name, score in result.scores.items() if name != "task_validity"}
    if min(frames.values()) < 0.99:
        return f"the task judge changed the frame axes: {frames}"
    if "task_validity" in result.scores and result.scores["task_validity"] > result.thresholds["task_validity"]:
        return "a broken task judge passed task validity"
    return None


# ------------------------------------------------------------------------------------------------- constructors
def constructors() -> list[Attempt]:
    from simgate_tracking import SimulatorGate
    from simgate_tracking.alerts import AlertPolicy
    from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
    from simgate_tracking.metrics import TaskValidity

    probe = probe_set()
    numbers = (0, -1, -100, 1.5, True, "3", None, math.nan)
    makers: list[tuple[str, Callable[[Any], Any], tuple[Any, ...]]] = [
        ("threshold", lambda v: SimulatorGate(threshold=v), (-0.1, 1.5, "0.6", None, math.nan, True, [0.5])),
        ("threshold", lambda v: SimulatorGate(threshold={"controllability": v}), (2.0, "x", math.inf)),
        ("threshold", lambda v: SimulatorGate(threshold={v: 0.5}), ("controlability", "", 3)),
        ("patience", lambda v: GateEarlyStopping(patience=v), numbers),
        ("grace_checks", lambda v: GateEarlyStopping(grace_checks=v), (-1, -100, 1.5, True, "3", None)),
        ("confident", lambda v: GateEarlyStopping(confident=v), (1, "yes", None)),
        ("drop_margin", lambda v: AlertPolicy(drop_margin=v), (0, -0.1, 1.5, "0.1", True, math.nan)),
        ("cooldown_checks", lambda v: AlertPolicy(cooldown_checks=v), (-1, 1.5, True, "2")),
        ("mode", lambda v: TaskValidity(mode=v), ("agree", "", None, 1)),
    ]
    for name in ("every_n_epochs", "batch_size", "planning_every_n_checks"):
        makers.append((name, lambda v, n=name: SimulatorGateCallback(probe, **{n: v}), numbers))
    makers += [
        ("num_sample_episodes", lambda v: SimulatorGateCallback(probe, num_sample_episodes=v), (-1, 1.5, True, "2")),
        ("value_range", lambda v: SimulatorGateCallback(probe, value_range=v), ((1, 0), (0, 0), "0-1", (0,), None)),
        ("confidence_level", lambda v: SimulatorGateCallback(probe, confidence_level=v), (0, 1, 1.5, "0.9", True)),
        ("rollout_fn", lambda v: SimulatorGateCallback(probe, rollout_fn=v), (3, "no.such.module:f", "math:pi")),
        ("task_fn", lambda v: SimulatorGateCallback(probe, task_fn=v), (3, "math:nope")),
        ("probe_set", lambda v: SimulatorGateCallback(v), (None, 3, {"context": 1}, "missing-probe.pt")),
    ]
    return [
        Attempt("constructor", f"{field}={value!r}", field, lambda _, make=make, value=value: make(value))
        for field, make, values in makers
        for value in values
    ]


# ------------------------------------------------------------------------------------------------ probe fields
def probe_fields() -> list[Attempt]:
    from simgate_tracking import ProbeSet

    good = fields()
    bad: list[tuple[str, str, Any]] = []
    for name, tensor in good.items():
        bad += [
            (name, "one dimension short", tensor[0]),
            *([] if name == "seeds" else [(name, "a list", tensor.tolist())]),  # a list of seeds is fine
            (name, "wrong episode count", torch.cat([tensor, tensor[:1]])),
            (name, "complex", tensor.to(torch.complex64)),
            (name, "on the meta device", tensor.to("meta")),
        ]
        if tensor.is_floating_point():
            bad += [(name, "NaN inside", tensor.clone().fill_(math.nan)), (name, "inf inside", tensor + math.inf)]
    bad += [
        ("context", "values up to 255 as floats", good["context"] * 255),
        ("targets", "values in [-1, 1]", good["targets"] * 2 - 1),
        ("masks", "float masks", good["masks"].float() * 0.5),
        ("seeds", "float seeds", good["seeds"].float() + 0.5),
        ("groups", "group ids 10**9", torch.tensor([10**9, 0, 1, 0])),
        ("groups", "negative group ids", torch.tensor([-1, 0, 1, 0])),
        ("outcomes", "string outcomes", ["yes", "no", "yes", "no"]),
        ("context", "no episodes", good["context"][:0]),
    ]
    return [
        Attempt("probe set", f"{name}: {what}", name, lambda _, n=name, v=value: ProbeSet(**{**good, n: v}))
        for name, what, value in bad
    ]


# ------------------------------------------------------------------------------------------------- probe files
def _saved(path: Path, edit: Callable[[dict[str, Any]], Any] | None = None) -> Path:
    probe_set().save(path)
    if edit is not None:
        payload = torch.load(path, weights_only=True)
        edit(payload)
        torch.save(payload, path)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _flip_byte(path: Path) -> Path:
    data = bytearray(_saved(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    return _write_bytes(path, bytes(data))


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


def probe_files() -> list[Attempt]:
    from simgate_tracking import ProbeSet

    expanded = {"context": lambda p: p.update(context=p["context"][:1].expand(20000, *p["context"].shape[1:]))}
    makers: dict[str, Callable[[Path], Path]] = {
        "empty file": lambda p: _write_bytes(p, b""),
        "random bytes": lambda p: _write_bytes(p, bytes(range(256)) * 8),
        "a JSON file": lambda p: _write_bytes(p, b'{"context": [1, 2]}'),
        "truncated": lambda p: _write_bytes(p, _saved(p).read_bytes()[:300]),
        "one byte flipped": _flip_byte,
        "a pickle that runs code": lambda p: (torch.save({"x": _Payload()}, p), p)[1],
        "hash deleted": lambda p: _saved(p, lambda d: d.pop("manifest_hash")),
        "hash of another probe": lambda p: _saved(p, lambda d: d.update(manifest_hash="0" * 64)),
        "format_version True": lambda p: _saved(p, lambda d: d.update(format_version=True)),
        "format_version -5": lambda p: _saved(p, lambda d: d.update(format_version=-5)),
        "format_version 99": lambda p: _saved(p, lambda d: d.update(format_version=99)),
        "context stride-0 expanded": lambda p: _saved(p, expanded["context"]),
        "targets replaced by a string": lambda p: _saved(p, lambda d: d.update(targets="x")),
        "context missing": lambda p: _saved(p, lambda d: d.pop("context")),
        "a directory": lambda p: (p.mkdir(), p)[1],
        "no such file": lambda p: p,
        "a plain list": lambda p: (torch.save([1, 2, 3], p), p)[1],
    }
    return [
        Attempt("probe file", what, "probe.pt", lambda d, m=make: ProbeSet.load(m(d / "probe.pt")))
        for what, make in makers.items()
    ]


# -------------------------------------------------------------------------------------------------- rollouts
def _evaluate(rollout: Callable[..., Any], **options: Any) -> Callable[[Path], Any]:
    def call(_: Path) -> Any:
        from simgate_tracking import evaluate

        return evaluate(rollout, probe_set(), batch_size=2, **options)

    return call


def _in_place(context: Tensor, actions: Tensor, generator: Any = None) -> Tensor:
    context.sub_(0.5)  # a careless model edits its input
    return simulate(context, actions)


def _stateful() -> Callable[..., Tensor]:
    memory: list[Tensor] = []

    def rollout(context: Tensor, actions: Tensor, generator: Any = None) -> Tensor:
        frames = simulate(context, actions)
        out = frames if not memory else 0.5 * frames + 0.5 * memory[-1][: len(frames)].mean()
        memory.append(frames)
        return out

    return rollout


def _raise(error: BaseException) -> Callable[..., Tensor]:
    def rollout(context: Tensor, actions: Tensor, generator: Any = None) -> Tensor:
        raise error

    return rollout


def rollouts() -> list[Attempt]:
    def frames(change: Callable[[Tensor], Any]) -> Callable[..., Any]:
        return lambda c, a, generator=None: change(simulate(c, a))

    bad: dict[str, Callable[..., Any]] = {
        "all NaN": frames(lambda f: f * math.nan),
        "one NaN pixel": frames(lambda f: f.index_put_((torch.tensor([0]),), torch.tensor(math.nan))),
        "inf": frames(lambda f: f + math.inf),
        "0..255 floats": frames(lambda f: f * 255),
        "tanh output [-1, 1]": frames(lambda f: f * 2 - 1),
        "1.2x brightness": frames(lambda f: f * 1.2),
        "uint8 out of a float model": frames(lambda f: (f * 255).to(torch.uint8) * 2),
        "int64 frames": frames(lambda f: f.long()),
        "complex frames": frames(lambda f: f.to(torch.complex64)),
        "one step short": frames(lambda f: f[:, :-1]),
        "channels last": frames(lambda f: f.permute(0, 1, 3, 4, 2)),
        "batch dimension lost": frames(lambda f: f[0]),
        "one episode short": frames(lambda f: f[:-1]),
        "a list of frames": frames(lambda f: list(f)),
        "a numpy array": frames(lambda f: f.numpy()),
        "None": frames(lambda f: None),
        "a string": frames(lambda f: "frames"),
        "on the meta device": frames(lambda f: f.to("meta")),
        "ignores actions (frozen)": frames(lambda f: f[:, :1].expand_as(f).clone()),
        "in-place edit of its context": _in_place,
        "state carried between episodes": _stateful(),
        "raises RuntimeError": _raise(RuntimeError("CUDA out of memory")),
        "raises KeyError": _raise(KeyError("latent")),
        "raises ZeroDivisionError": _raise(ZeroDivisionError("division by zero")),
        "a rollout_fn that takes no generator": lambda c, a: simulate(c, a),
    }
    attempts = [Attempt("rollout", what, "rollout", _evaluate(fn), _fails) for what, fn in bad.items()]
    task_bad: dict[str, Callable[[Tensor], Any]] = {
        "NaN outcomes": lambda f: torch.full((f.shape[0],), math.nan),
        "one outcome short": lambda f: torch.ones(f.shape[0] - 1),
        "(B, 1) outcomes": lambda f: torch.ones(f.shape[0], 1),
        "a list": lambda f: [1.0] * f.shape[0],
        "None": lambda f: None,
        "raises": lambda f: 1 / 0,
        "edits the frames in place": lambda f: f.mul_(0.5).mean(dim=(1, 2, 3, 4)) > 0.2,
        "string outcomes": lambda f: ["yes"] * f.shape[0],
    }
    attempts += [
        Attempt("task_fn", what, "task_fn", _evaluate(simulate, task_fn=fn), _task_judge_caught)
        for what, fn in task_bad.items()
    ]
    attempts += [
        Attempt("evaluate", f"{name}={value!r}", name, _evaluate(simulate, **{name: value}))
        for name, value in (
            ("batch_size", 0),
            ("batch_size", "4"),
            ("value_range", (1, 0)),
            ("value_range", "unit"),
            ("confidence_level", 1.5),
            ("threshold", 2.0),
            ("device", "cuda:99"),
            ("device", "toaster"),
        )
    ]
    return attempts


# -------------------------------------------------------------------------------------------------- metrics
def metrics() -> list[Attempt]:
    from simgate_tracking.metrics import (
        Controllability,
        ObjectPersistence,
        ResetReproducibility,
        TaskValidity,
        TemporalConsistency,
    )

    y = fields()["targets"]
    ref = y[:, 0]
    masks = fields()["masks"]
    cases: list[tuple[str, str, Callable[[], Any]]] = [
        ("preds", "Controllability: shapes differ", lambda: Controllability().update(y[:, :2], y)),
        ("preds", "Controllability: 5-D", lambda: Controllability().update(ref, ref)),
        ("preds", "Controllability: int64", lambda: Controllability().update(y.long(), y)),
        ("preds", "Controllability: one branch", lambda: Controllability().update(y[:, :1], y[:, :1])),
        ("preds", "TemporalConsistency: 4-D", lambda: TemporalConsistency().update(ref[0], ref[0])),
        ("preds", "TemporalConsistency: one step", lambda: TemporalConsistency().update(ref[:, :1], ref[:, :1])),
        ("preds", "TemporalConsistency: complex", lambda: TemporalConsistency().update(ref.cfloat(), ref)),
        ("masks", "ObjectPersistence: float masks", lambda: ObjectPersistence().update(ref, ref, masks.float())),
        ("masks", "ObjectPersistence: wrong size", lambda: ObjectPersistence().update(ref, ref, masks[..., :4])),
        (
            "visible",
            "ObjectPersistence: visible 2-D",
            lambda: ObjectPersistence().update(ref, ref, masks, masks[:, 0, 0, 0]),
        ),
        ("second", "ResetReproducibility: shapes", lambda: ResetReproducibility().update(ref, ref[:2], ref)),
        ("real", "TaskValidity: lengths differ", lambda: TaskValidity().update(torch.ones(4), torch.ones(3))),
        ("real", "TaskValidity: outcome 0.5", lambda: _scored(TaskValidity(), torch.ones(4), torch.full((4,), 0.5))),
        (
            "groups",
            "TaskValidity: ranking without groups",
            lambda: TaskValidity(mode="ranking").update(torch.ones(4), torch.ones(4)),
        ),
    ]
    return [Attempt("metric", what, name, lambda _, f=fn: f()) for name, what, fn in cases]


AREAS: list[Callable[[], list[Attempt]]] = [constructors, probe_fields, probe_files, rollouts, metrics]
