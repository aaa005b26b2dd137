"""Attempts of ``python -m benchmarks.faults`` at run time: checkpoint states, dashboards, reports, CLI, Trainer."""

from __future__ import annotations

import errno
import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from benchmarks.fault_cases import probe_set, simulate
from benchmarks.faults import Attempt

DISK_FULL = OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------------------------------------- checkpoint states
def _result() -> dict[str, Any]:
    from simgate_tracking import SimulatorGate

    return SimulatorGate().evaluate({"controllability": 0.5, "temporal_consistency": 0.9}).to_dict()


def states() -> list[Attempt]:
    from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback

    result = _result()
    gate_states: list[tuple[str, str, Any]] = [
        ("state", "None", None),
        ("state", "a list", [1, 2]),
        ("state", "a string", "garbage"),
        ("history", "history a string", {"history": "abc"}),
        ("history", "history a dict", {"history": {"0": result}}),
        ("history", "history entry None", {"history": [None]}),
        ("history", "NaN score", {"history": [{**result, "scores": {"controllability": math.nan}}]}),
        ("history", "string score", {"history": [{**result, "scores": {"controllability": "0.5"}}]}),
        ("history", "no thresholds", {"history": [{k: v for k, v in result.items() if k != "thresholds"}]}),
        ("history", "weakest axis unknown", {"history": [{**result, "weakest_axis": "bogus"}]}),
        ("history", "bad interval", {"history": [{**result, "intervals": {"controllability": "wide"}}]}),
        ("validation_runs", "negative", {"validation_runs": -3}),
        ("validation_runs", "a string", {"validation_runs": "3"}),
        ("validation_runs", "a float", {"validation_runs": 2.5}),
        ("manifest_hash", "an int", {"manifest_hash": 123}),
        ("manifest_hash", "another probe set", {"manifest_hash": "0" * 64, "history": [result]}),
        ("alert_policy", "a list", {"alert_policy": [1]}),
        ("alert_policy", "negative checks", {"alert_policy": {"checks": -1}}),
        ("alert_policy", "NaN best", {"alert_policy": {"best": {"controllability": math.nan}}}),
        ("surprise", "an unknown key", {"surprise": 1}),
    ]
    stop_states: list[tuple[str, str, Any]] = [
        ("state", "None", None),
        ("state", "a list", [3, 2]),
        ("failures_in_a_row", "-100", {"checks_seen": 5, "failures_in_a_row": -100}),
        ("failures_in_a_row", "1.5", {"checks_seen": 5, "failures_in_a_row": 1.5}),
        ("failures_in_a_row", "True", {"checks_seen": 5, "failures_in_a_row": True}),
        ("failures_in_a_row", "more than checks", {"checks_seen": 1, "failures_in_a_row": 4}),
        ("checks_seen", "negative", {"checks_seen": -1}),
        ("checks_seen", "a string", {"checks_seen": "7"}),
        ("stopped_at_step", "negative", {"stopped_at_step": -5}),
        ("stopped_at_step", "a string", {"stopped_at_step": "end"}),
        ("manifest_hash", "an int", {"manifest_hash": 5}),
        ("patience", "an unknown key", {"patience": 1}),
    ]
    probe = probe_set()
    attempts = [
        Attempt(
            "checkpoint state",
            f"gate: {what}",
            name,
            lambda _, s=state: SimulatorGateCallback(probe).load_state_dict(s),
        )
        for name, what, state in gate_states
    ]
    attempts += [
        Attempt(
            "checkpoint state",
            f"early stopping: {what}",
            name,
            lambda _, s=state: GateEarlyStopping().load_state_dict(s),
        )
        for name, what, state in stop_states
    ]
    return attempts


# ------------------------------------------------------------------------------------------------ dashboards
def _checks(count: int) -> list[Any]:
    from simgate_tracking import SimulatorGate
    from simgate_tracking.alerts import AlertPolicy
    from simgate_tracking.report import GateCheck, RolloutSamples

    policy, gate = AlertPolicy(cooldown_checks=0), SimulatorGate()
    real = probe_set().targets
    samples = RolloutSamples([0], real[:1], real[:1] * 0.9, None)
    checks = []
    for i in range(count):
        result = gate.evaluate({"controllability": 0.3 + 0.05 * i, "temporal_consistency": 0.9})
        checks.append(
            GateCheck(result, 100 * (i + 1), i, "ab12", alerts=tuple(policy.update(result, i)), samples=samples)
        )
    return checks


def _tensorboard(method: str, failures: int, error: BaseException) -> Callable[[Path], Any]:
    def call(directory: Path) -> Any:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from torch.utils.tensorboard import SummaryWriter

        from simgate_tracking.loggers import TensorBoardGateLogger

        writer = SummaryWriter(str(directory))
        dashboards, original, calls = _dashboards(TensorBoardGateLogger(writer)), getattr(writer, method), []

        def flaky(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) <= failures:
                raise error
            return original(*args, **kwargs)

        setattr(writer, method, flaky)
        checks = _checks(4)
        for check in checks:
            dashboards.log(TRAINER, check, {})
        writer.close()
        events = EventAccumulator(str(directory), size_guidance={"scalars": 0})
        events.Reload()
        tags = events.Tags()["scalars"]
        steps = [e.step for e in events.Scalars("simgate/min_axis")] if "simgate/min_axis" in tags else []
        return [c.step for c in checks[1:] if c.step not in steps]

    return call


def _wandb(method: str, failures: int, error: BaseException) -> Callable[[Path], Any]:
    def call(directory: Path) -> Any:
        import wandb

        from simgate_tracking.loggers import WandbGateLogger

        run = wandb.init(mode="offline", dir=directory, settings=wandb.Settings(silent=True))
        logger = WandbGateLogger(run, alert_wait_s=0)
        dashboards, original, calls = _dashboards(logger), getattr(run, method), []

        def flaky(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) <= failures:
                raise error
            return original(*args, **kwargs)

        setattr(run, method, flaky)
        checks, logged = _checks(4), []
        for check in checks:
            rows = len(calls) if method == "log" else None
            dashboards.log(TRAINER, check, {})
            logged.append(rows is None or len(calls) > rows)
        run.finish()
        return [c.step for c, sent in zip(checks[2:], logged[2:], strict=True) if not sent]

    return call


TRAINER = SimpleNamespace(loggers=[])  # a Trainer as the gate's dashboards see it: no other Lightning logger


def _dashboards(logger: Any) -> Any:
    """The dashboards of the gate callback around one gate logger, as in a training run."""
    from simgate_tracking.callbacks._dashboards import GateDashboards

    dashboards = GateDashboards()
    dashboards.gate_loggers = [logger]
    return dashboards


def _missing(steps: Any) -> str | None:
    return f"lost: the curves of checks at steps {steps} never arrived" if steps else None


def dashboards() -> list[Attempt]:
    faults: list[tuple[str, str, Callable[[Path], Any]]] = [
        ("media", "TensorBoard add_image: disk full once", _tensorboard("add_image", 1, DISK_FULL)),
        ("media", "TensorBoard add_image: disk full always", _tensorboard("add_image", 99, DISK_FULL)),
        ("alerts", "TensorBoard add_text: fails once", _tensorboard("add_text", 1, DISK_FULL)),
        ("TensorBoardGateLogger", "TensorBoard add_scalar: fails once", _tensorboard("add_scalar", 1, DISK_FULL)),
        ("TensorBoardGateLogger", "TensorBoard flush: fails once", _tensorboard("flush", 1, DISK_FULL)),
        ("alerts", "W&B run.alert: fails once", _wandb("alert", 1, ConnectionError("alert service down"))),
        ("alerts", "W&B run.alert: fails always", _wandb("alert", 99, ConnectionError("alert service down"))),
        ("WandbGateLogger", "W&B run.log: fails once", _wandb("log", 1, DISK_FULL)),
        ("WandbGateLogger", "W&B define_metric: fails once", _wandb("define_metric", 1, ConnectionError("down"))),
    ]
    return [Attempt("dashboard", what, name, fn, _missing) for name, what, fn in faults]


# ------------------------------------------------------------------------------------------- reports and CLI
def _report_dir(directory: Path, name: str, content: bytes | None) -> Path:
    from simgate_tracking import SimulatorGate
    from simgate_tracking.report import GateCheck

    for i, step in enumerate((100, 200)):
        result = SimulatorGate().evaluate({"controllability": 0.5 + 0.1 * i, "temporal_consistency": 0.9})
        GateCheck(result, step, i, "ab12").write(directory)
    path = directory / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return directory


def reports() -> list[Attempt]:
    from simgate_tracking.cli import main

    good = json.loads(_report_dir_text())
    files: dict[str, bytes | None] = {
        "truncated": json.dumps(good)[:40].encode(),
        "empty": b"",
        "binary": bytes(range(256)),
        "a list": b"[1, 2, 3]",
        "null score": json.dumps({**good, "scores": {"controllability": None}}).encode(),
        "string step": json.dumps({**good, "step": "300"}).encode(),
        "scores a list": json.dumps({**good, "scores": [0.5]}).encode(),
        "no thresholds": json.dumps({k: v for k, v in good.items() if k != "thresholds"}).encode(),
        "a directory": None,
    }
    attempts = [
        Attempt(
            "report",
            f"check-300.json: {what}",
            "check-300.json",
            lambda d, c=content: main(["report", str(_report_dir(d, "check-300.json", c)), "--png", str(d / "c.png")]),
        )
        for what, content in files.items()
    ]
    argvs: list[tuple[str, list[str]]] = [
        ("demo,report", ["bogus"]),
        ("run_dir", ["report"]),
        ("max-epochs", ["demo", "--max-epochs", "0"]),
        ("max-epochs", ["demo", "--max-epochs", "x"]),
        ("seed", ["demo", "--seed", "one"]),
        ("no-such-run", ["report", "no-such-run"]),
    ]
    attempts += [Attempt("cli", " ".join(argv), field, lambda d, a=argv: main(a)) for field, argv in argvs]
    return attempts


def _report_dir_text() -> str:
    from simgate_tracking import SimulatorGate
    from simgate_tracking.report import GateCheck

    return json.dumps(GateCheck(SimulatorGate().evaluate({"controllability": 0.7}), 300, 0, "ab12").to_report())


# -------------------------------------------------------------------------------------------------- a Trainer
def _fit(rollout: Callable[..., Any], probe: Any = None, epochs: int = 2) -> Callable[[Path], Any]:
    def call(directory: Path) -> Any:
        import lightning.pytorch as pl
        from torch.utils.data import DataLoader, TensorDataset

        from simgate_tracking.callbacks import SimulatorGateCallback

        class Model(pl.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.bias = torch.nn.Parameter(torch.zeros(()))

            def rollout(self, context: Any, actions: Any, generator: Any = None) -> Any:
                return rollout(context, actions) + 0 * self.bias

            def training_step(self, batch: Any, batch_idx: int) -> Any:
                return self.bias.square()

            def validation_step(self, batch: Any, batch_idx: int) -> None:
                pass

            def configure_optimizers(self) -> Any:
                return torch.optim.SGD(self.parameters(), lr=0.1)

        gate = SimulatorGateCallback(probe if probe is not None else probe_set(), batch_size=2)
        data = DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=2)
        trainer = pl.Trainer(
            default_root_dir=directory,
            max_epochs=epochs,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            callbacks=[gate],
        )
        trainer.fit(Model(), data, data)
        return gate.history[-1] if gate.history else None

    return call


def trainer_runs() -> list[Attempt]:
    from benchmarks.fault_cases import fields

    def with_frames(change: Callable[[Any], Any]) -> Callable[..., Any]:
        return lambda c, a: change(simulate(c, a))

    small = {k: v for k, v in fields().items() if k not in ("masks", "visible")}
    big = {**small, "context": torch.rand(4, 1, 3, 16, 16), "targets": torch.rand(4, 3, 4, 3, 16, 16)}
    from simgate_tracking import ProbeSet

    runs: list[tuple[str, str, Callable[[Path], Any]]] = [
        ("rollout", "NaN rollouts in fit", _fit(with_frames(lambda f: f * math.nan))),
        ("rollout", "0..255 rollouts in fit", _fit(with_frames(lambda f: f * 255))),
        ("rollout", "a rollout that raises in fit", _fit(lambda c, a: 1 / 0)),
        ("context", "a probe set whose frames do not fit the model", _fit(simulate, ProbeSet(**big))),
    ]
    return [
        Attempt("trainer", what, name, fn, lambda r: None if r is None or not r.passed else "passed")
        for name, what, fn in runs
    ]


AREAS: list[Callable[[], list[Attempt]]] = [states, dashboards, reports, trainer_runs]
