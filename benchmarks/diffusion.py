"""The gate's share of training time with a diffusion world model, rollouts and scoring apart, per denoising steps.

Sampling dominates a diffusion model's gate check: every probe frame costs ``num_inference_steps`` UNet calls. This
trains :class:`~simgate_tracking.models.DiffusionWorldModel` at ``simgate demo``'s settings (a 24-episode,
3-branch, 10-step probe set checked after every epoch; 1024 windows of 8 steps per epoch, 16 per batch) for each
number of steps, and times, inside one run each: the training steps, the gate's hook, and the model's rollouts inside
it (the rest of the hook is scoring, reports and dashboards). ``--windows`` below 1024 saves time: the share is then
computed at the demo's 64 training steps per epoch from the measured seconds per step.

    python -m benchmarks.diffusion                        # 1, 2, 3 and 5 steps, 2 epochs each
    python -m benchmarks.diffusion --steps 2 --epochs 1 --windows 64
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

DEMO_WINDOWS = 1024
DEMO_EPISODES = 24
DEMO_STEPS = DEMO_WINDOWS // 16  # training steps per demo epoch (16 windows per batch)
TARGET = 0.10  # the gate's share of training time to stay under


@dataclass(frozen=True)
class DiffusionShare:
    """Seconds of one training run with the gate on: training steps, the gate's hook, the rollouts inside the hook.

    A run may train fewer windows per epoch than the demo, to save time: the demo's share is then computed from the
    measured seconds per training step at the demo's :data:`DEMO_STEPS` steps per epoch.
    """

    steps: int
    training_seconds: float
    gate_seconds: float
    rollout_seconds: float
    checks: int
    step_seconds: float  # one training step (16 windows of 8 steps: 128 denoising samples, forward and backward)
    train_steps: int

    @property
    def fraction(self) -> float:
        """The gate's share of training wall time at the demo's epoch size."""
        other = self.training_seconds - self.gate_seconds - self.step_seconds * self.train_steps  # validation, setup
        demo = self.step_seconds * DEMO_STEPS * self.checks + other + self.gate_seconds
        return self.gate_seconds / demo

    def row(self) -> str:
        """One line of the table."""
        scoring = self.gate_seconds - self.rollout_seconds
        verdict = "PASS" if self.fraction < TARGET else "FAIL"
        rollouts, scored = self.rollout_seconds / self.checks, scoring / self.checks
        epoch = self.step_seconds * DEMO_STEPS
        return (
            f"{self.steps:>5}  {self.step_seconds:>6.2f}  {epoch:>7.1f}  {rollouts:>8.1f}  {scored:>8.2f}  "
            f"{rollouts / (epoch + rollouts + scored):>8.1%}  {scored / (epoch + rollouts + scored):>7.1%}  "
            f"{self.fraction:>6.1%}  {verdict}"
        )


HEADER = "steps  step s  epoch s  rollouts  scoring  rollouts  scoring    gate  (< 10%)"
UNITS = "       (train)  (demo)   s/check   s/check  (share)   (share)  (share)"


class _TrainTimer:
    """Wall time of the training batches (forward, backward, optimiser step), apart from validation and the gate."""

    def __init__(self) -> None:
        self.seconds, self.batches, self._start = 0.0, 0, 0.0

    def callback(self) -> Any:
        import lightning as L

        timer = self

        class Timer(L.Callback):
            def on_train_batch_start(self, *args: Any) -> None:
                timer._start = time.perf_counter()

            def on_train_batch_end(self, *args: Any) -> None:
                timer.seconds += time.perf_counter() - timer._start
                timer.batches += 1

        return Timer()


@contextmanager
def _timed_rollouts(model: Any, inside: list[bool], spent: list[float]) -> Iterator[None]:
    """Time the model's rollouts while the gate's hook runs (``inside``)."""
    original = model.rollout

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            if inside[0]:
                spent.append(time.perf_counter() - start)

    model.rollout = timed
    try:
        yield
    finally:
        del model.rollout


def diffusion_share(
    steps: int, epochs: int = 2, train_windows: int = DEMO_WINDOWS, seed: int = 0, episodes: int = DEMO_EPISODES
) -> DiffusionShare:
    """Train the diffusion world model at the demo's settings with ``steps`` denoising steps; time the gate in it."""
    import lightning as L

    from simgate_tracking.callbacks import SimulatorGateCallback
    from simgate_tracking.models import DiffusionWorldModel
    from simgate_tracking.toy import ToyWorldDataModule, make_probe_set, reached_goal

    L.seed_everything(seed, verbose=False)
    probe = make_probe_set(num_episodes=episodes, num_branches=3, horizon=10, seed=seed)
    data = ToyWorldDataModule(train_windows=train_windows, val_windows=32, batch_size=16, horizon=8, seed=seed)
    model = DiffusionWorldModel(
        frame_shape=probe.frame_shape, action_dim=probe.action_dim, context_frames=2, num_inference_steps=steps
    )
    gate = SimulatorGateCallback(probe, task_fn=reached_goal)
    hook: list[float] = []
    rollouts: list[float] = []
    inside = [False]
    timer = _TrainTimer()
    original_hook = SimulatorGateCallback.on_validation_epoch_end

    def timed_hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        inside[0], start = True, time.perf_counter()
        try:
            return original_hook(self, *args, **kwargs)
        finally:
            inside[0] = False
            hook.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as out, _timed_rollouts(model, inside, rollouts), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SimulatorGateCallback.on_validation_epoch_end = timed_hook  # type: ignore[method-assign]
        try:
            trainer = L.Trainer(
                default_root_dir=out,
                max_epochs=epochs,
                logger=L.pytorch.loggers.TensorBoardLogger(out, name="diffusion"),
                callbacks=[gate, timer.callback()],
                enable_progress_bar=False,
                enable_model_summary=False,
                enable_checkpointing=False,
                num_sanity_val_steps=0,
                log_every_n_steps=10,
            )
            started = time.perf_counter()
            trainer.fit(model, datamodule=data)
            seconds = time.perf_counter() - started
        finally:
            SimulatorGateCallback.on_validation_epoch_end = original_hook  # type: ignore[method-assign]
    step_seconds = timer.seconds / max(timer.batches, 1)
    return DiffusionShare(steps, seconds, sum(hook), sum(rollouts), len(gate.history), step_seconds, timer.batches)


def diffusion_table(shares: Sequence[DiffusionShare]) -> str:
    """The table of every measured number of steps, and the most steps that keep the gate under 10%."""
    lines = ["## gate share with DiffusionWorldModel (simgate demo's settings)", HEADER, UNITS]
    lines += [share.row() for share in shares]
    fitting = [share.steps for share in shares if share.fraction < TARGET]
    most = f"{max(fitting)} denoising steps" if fitting else "none of the measured step counts"
    lines.append(f"most steps with the gate under {TARGET:.0%} of training time: {most}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every ``--steps`` and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.diffusion", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, action="append", help="denoising steps (repeatable; 1, 2, 3, 5)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run, one check each (2)")
    parser.add_argument("--windows", type=int, default=DEMO_WINDOWS, help="training windows per epoch (1024)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1, as simgate demo)")
    args = parser.parse_args(argv)
    if min(args.epochs, args.windows, args.threads, *(args.steps or [1])) < 1:
        parser.error("--steps, --epochs, --windows and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    # a small run first: kernel set-up and first-call costs would otherwise land on the first measured run alone
    diffusion_share(2, epochs=1, train_windows=16, episodes=2)
    shares = []
    for steps in args.steps or [1, 2, 3, 5]:
        shares.append(diffusion_share(steps, args.epochs, args.windows))
        print(shares[-1].row(), flush=True)
    print("\n" + diffusion_table(shares))
    return 0


if __name__ == "__main__":
    sys.exit(main())
