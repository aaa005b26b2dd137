"""The gate's share of the demo's training wall time, at the callback's default interval (every validation run)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

DEMO_EPOCHS = 15  # simgate demo's own defaults; early stopping may end it sooner
DEMO_WINDOWS = 1024
# what the callback's hook spends its time on, by method; the rest of the hook is the check itself
PARTS = {"planning probe": "_plan", "dashboards and reports": "_publish"}


@dataclass(frozen=True)
class GateShare:
    """Seconds inside the gate's hook against the whole training run that contains it, with a breakdown."""

    gate_seconds: float
    training_seconds: float
    checks: int
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """The gate's share of training wall time."""
        return self.gate_seconds / self.training_seconds

    @property
    def detail(self) -> str:
        """What was timed, in a few words."""
        return f"{self.checks} checks, {self.gate_seconds:.1f} s of {self.training_seconds:.1f} s"

    def breakdown(self) -> str:
        """Each part's share of training wall time: the check itself (rollouts, scorecard), planning, dashboards."""
        check = self.gate_seconds - sum(self.parts.values())
        shares = {"rollouts and scorecard": check, **self.parts}
        return ", ".join(f"{name} {seconds / self.training_seconds:.1%}" for name, seconds in shares.items())


@contextmanager
def _timed(owner: type, name: str, spent: list[float]) -> Iterator[None]:
    """Time every call of ``owner.name`` while inside (a method the owner may lack is left alone)."""
    method = owner.__dict__.get(name)
    if method is None:
        yield
        return

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, method)


def gate_share(epochs: int = DEMO_EPOCHS, train_windows: int = DEMO_WINDOWS, seed: int = 0) -> GateShare:
    """Run ``simgate demo``'s training (its settings, TensorBoard on) and time the gate callback inside it.

    The share is measured inside one run (time in the gate's hook over the run's wall time), not as the difference
    of two runs, so that other load on a shared machine does not swing it.
    """
    from simgate_tracking.callbacks import SimulatorGateCallback
    from simgate_tracking.toy.demo import run_demo

    hook: list[float] = []
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    with tempfile.TemporaryDirectory() as out, ExitStack() as stack:
        stack.enter_context(_timed(SimulatorGateCallback, "on_validation_epoch_end", hook))
        for name, method in PARTS.items():
            stack.enter_context(_timed(SimulatorGateCallback, method, parts[name]))
        run = run_demo(
            out=out,
            loggers=("tensorboard",),
            max_epochs=epochs,
            train_windows=train_windows,
            seed=seed,
            progress_bar=False,
            write=lambda text: None,
        )
    return GateShare(
        gate_seconds=sum(hook),
        training_seconds=run.seconds,
        checks=run.checks,
        parts={name: sum(spent) for name, spent in parts.items()},
    )
