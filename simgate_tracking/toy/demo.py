"""The demo run behind ``simgate demo``: a small world model trains on the toy world with the simulator gate on."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar

from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from simgate_tracking.gate import GateResult
from simgate_tracking.planning.probe import PlanningProbe
from simgate_tracking.report import GateCheck
from simgate_tracking.toy.data import ToyWorldDataModule
from simgate_tracking.toy.demo_loggers import (
    LOGGERS,
    RUN_NAME,
    finish_wandb,
    logger_dirs,
    make_loggers,
    wandb_logged_in,
)
from simgate_tracking.toy.model import ToyWorldModel
from simgate_tracking.toy.planning import ToyPlanningEnvironment, toy_goal_progress
from simgate_tracking.toy.probes import make_probe_set
from simgate_tracking.toy.task import reached_goal
from simgate_tracking.toy.world import ToyWorld

STOCHASTIC_TAKES = 4  # real takes of every probe branch in the stochastic demo
MODELS: tuple[str, ...] = ("toy", "diffusion")  # the world models the demo trains

__all__ = ["LOGGERS", "MODELS", "RUN_NAME", "ScorecardPrinter", "make_loggers", "run_demo", "wandb_logged_in"]


class ScorecardPrinter(Callback):
    """Print the scorecard of every new gate check, its alerts and the early-stopping count, as training goes.

    Args:
        write: Where the text goes; default: the Trainer's progress bar (so that the bar stays whole), or ``print``.

    Example:
        >>> from simgate_tracking import SimulatorGate
        >>> check = GateCheck(SimulatorGate().evaluate({"controllability": 0.5}), step=64, epoch=0, manifest_hash="ab")
        >>> print(ScorecardPrinter().describe(1, check))
        check 1 (epoch 0, step 64)
        simulator gate: FAIL (weakest axis: controllability)
          controllability           0.500  > 0.65  <- weakest
    """

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self.write = write
        self.printed = 0

    def describe(self, number: int, check: GateCheck, stopper: GateEarlyStopping | None = None) -> str:
        """The text of check number ``number``: its scorecard, planning summary, alerts and early-stopping count."""
        lines = [f"check {number} (epoch {check.epoch}, step {check.step})", str(check.result)]
        if check.planning is not None:
            lines.append(f"  {check.planning.summary()}")
        lines += [f"  ALERT {alert.level}: {alert.title}" for alert in check.alerts]
        if stopper is not None:
            lines.append(f"  early stopping: {_stopping_status(stopper)}")
        return "\n".join(lines)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Print the checks the gate callback ran since the last call."""
        callbacks = trainer.callbacks  # type: ignore[attr-defined]
        gate = next((cb for cb in callbacks if isinstance(cb, SimulatorGateCallback)), None)
        if trainer.sanity_checking or gate is None or gate.last_check is None or len(gate.history) <= self.printed:
            return
        self.printed = len(gate.history)
        stopper = next((cb for cb in callbacks if isinstance(cb, GateEarlyStopping)), None)
        text = "\n" + self.describe(self.printed, gate.last_check, stopper)
        bar = trainer.progress_bar_callback
        if self.write is not None:
            self.write(text)
        elif isinstance(bar, TQDMProgressBar) and not bar.is_disabled:
            bar.print(text)
        else:
            print(text)  # the demo's output is its purpose


def _stopping_status(stopper: GateEarlyStopping) -> str:
    if stopper.checks_seen <= stopper.grace_checks:
        return f"grace check {stopper.checks_seen}/{stopper.grace_checks}, not counted"
    return f"{stopper.failures_in_a_row}/{stopper.patience} failing checks in a row"


@dataclass
class DemoRun:
    """What a demo run produced: the last verdict, how many checks ran, and where everything went.

    Attributes:
        result: The last check's verdict (None if no check ran).
        checks: How many gate checks ran.
        last_check: The last check with its alerts and per-episode scores.
        log_dir: The Trainer's log directory (reports under ``simgate/``).
        logger_dirs: Each dashboard's own run directory, by logger name.
        best_checkpoint: The checkpoint with the best weakest axis, if any.
        stopped_early: Why ``GateEarlyStopping`` stopped training, if it did.
        seconds: Wall-clock time of the whole run.
        takes: Real takes of every probe branch: 1, or :data:`STOCHASTIC_TAKES` in the stochastic world.
    """

    result: GateResult | None
    checks: int
    last_check: GateCheck | None
    log_dir: Path
    logger_dirs: dict[str, Path]
    best_checkpoint: str | None
    stopped_early: str | None
    seconds: float
    takes: int = 1


def run_demo(
    out: str | os.PathLike[str] = "runs",
    loggers: Sequence[str] = ("tensorboard",),
    max_epochs: int = 15,
    train_windows: int = 1024,
    seed: int = 0,
    threads: int = 1,
    progress_bar: bool = True,
    write: Callable[[str], None] | None = None,
    stochastic: bool = False,
    model: str = "toy",
) -> DemoRun:
    """Train :class:`ToyWorldModel` on the toy world with the simulator gate on, and say how it went.

    The gate scores the model on a fixed probe set after every epoch, and every 5th check it also plans with the
    model in the real toy world; :class:`GateEarlyStopping` stops a run that keeps failing after a grace period of
    half the epochs; ``ModelCheckpoint`` keeps the checkpoint with the best weakest axis (``simgate/min_axis``);
    the chosen dashboards get curves, rollout GIFs and alerts under ``out``.

    Args:
        out: Where runs go.
        loggers: Dashboards among :data:`LOGGERS`.
        max_epochs: Training epochs (one gate check each).
        train_windows: Training windows per epoch (16 per step).
        seed: Seeds the data, the model and the probe set.
        threads: Torch intra-op threads. One is the default: the model is small, and on a busy machine more
            threads than free cores make every step many times slower.
        progress_bar: Show Lightning's progress bar.
        write: Where progress text goes; default ``print``.
        stochastic: Play the stochastic toy world, whose blue object walks at random: the model trains on it, and
            the probe set holds :data:`STOCHASTIC_TAKES` real takes of every branch, so every check also scores
            reality against itself (``GateResult.real_baseline``, below 1 here) beside the model.
        model: The world model among :data:`MODELS`: ``"toy"`` (:class:`ToyWorldModel`) or ``"diffusion"``
            (:class:`~simgate_tracking.models.DiffusionWorldModel`, a diffusers UNet sampling every frame in 2
            denoising steps; it needs the ``diffusion`` extra). The diffusion model skips the planning probe, whose
            imagined futures would cost several checks' worth of sampling.

    Raises:
        ValueError: On a bad argument.

    Example:
        >>> import tempfile
        >>> run = run_demo(tempfile.mkdtemp(), ["csv"], 1, train_windows=32, progress_bar=False)  # doctest: +ELLIPSIS
        simgate demo: a small world model learns the toy world; the simulator gate scores it after every epoch
        ...
        check 1 (epoch 0, step 2)
        simulator gate: FAIL (weakest axis: ...)
        ...
        >>> run.checks, run.result.passed, sorted(run.logger_dirs)
        (1, False, ['csv'])
    """
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(f"Expected argument `max_epochs` to be a positive int but got {max_epochs!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"Expected argument `threads` to be a positive int but got {threads!r}")
    if not isinstance(stochastic, bool):
        raise ValueError(f"Expected argument `stochastic` to be a bool but got {stochastic!r}")
    if model not in MODELS:
        raise ValueError(f"Expected argument `model` to be one of {MODELS} but got {model!r}")
    started, previous_threads = time.perf_counter(), torch.get_num_threads()
    say = write or print
    out_dir = Path(out)
    L.seed_everything(seed, verbose=False)
    # the stochastic world: real takes of every branch, so reality's own score is measured beside the model's
    takes = STOCHASTIC_TAKES if stochastic else 1
    probe = make_probe_set(num_episodes=24, num_branches=3, horizon=10, seed=seed, takes=takes, stochastic=stochastic)
    data = ToyWorldDataModule(
        train_windows=train_windows, val_windows=32, batch_size=16, horizon=8, seed=seed, stochastic=stochastic
    )
    # closed-loop planning in the real toy world from 4 of the probe's resets: costlier, so every 5th check, and
    # each plan's first 4 actions are played before planning again
    planning: PlanningProbe | None = PlanningProbe(
        # the stochastic world's distractor walks on its own; the goal, the agent and the task do not depend on it
        ToyPlanningEnvironment(ToyWorld(stochastic=stochastic)),
        toy_goal_progress,
        seeds=probe.seeds[:4].tolist(),
        max_steps=16,
        candidates=16,
        replan_every=4,
    )
    if model == "diffusion":  # imagining every candidate plan would cost several checks' worth of sampling
        planning = None
    gate = SimulatorGateCallback(
        probe, task_fn=reached_goal, num_sample_episodes=2, planning_probe=planning, planning_every_n_checks=5
    )
    stopper = GateEarlyStopping(patience=3, grace_checks=max(1, max_epochs // 2), verbose=False)
    best = ModelCheckpoint(monitor="simgate/min_axis", mode="max", save_top_k=1, filename="gate-best-{epoch:02d}")
    printer = ScorecardPrinter(write)
    trainer = L.Trainer(
        default_root_dir=str(out_dir),
        max_epochs=max_epochs,
        logger=make_loggers(loggers, out_dir),
        callbacks=[gate, stopper, best, printer],
        log_every_n_steps=10,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    say(
        f"simgate demo: a small world model learns the toy world; the simulator gate scores it after every epoch\n"
        f"  probe set  {probe.name}: {len(probe)} episodes x {probe.num_branches} action branches x "
        f"{probe.horizon} steps{_takes_words(probe.num_takes)}, manifest {probe.manifest_hash[:12]}\n"
        f"  training   {train_windows} windows per epoch, up to {max_epochs} epochs, "
        f"on {trainer.strategy.root_device} ({threads} thread{'s' if threads > 1 else ''})\n"
        f"{_planning_words(planning)}"
        f"  logs       {trainer.log_dir}"
    )
    world_model = _world_model(model, probe.frame_shape, probe.action_dim)
    torch.set_num_threads(threads)
    try:
        _fit(trainer, world_model, data)
        dashboards = logger_dirs(trainer.loggers)
    finally:
        torch.set_num_threads(previous_threads)
        finish_wandb(trainer.loggers)
    return DemoRun(
        result=gate.history[-1] if gate.history else None,
        checks=len(gate.history),
        last_check=gate.last_check,
        log_dir=Path(trainer.log_dir or out_dir),
        logger_dirs=dashboards,
        best_checkpoint=best.best_model_path or None,
        stopped_early=stopper.reason if stopper.stopped_at_step is not None else None,
        seconds=time.perf_counter() - started,
        takes=probe.num_takes,
    )


def _planning_words(planning: PlanningProbe | None) -> str:
    """The banner's planning line: how often the model plans, or that this demo's model does not."""
    if planning is None:
        return "  planning   off: imagining every plan would cost the diffusion model several checks of sampling\n"
    return (
        f"  planning   every 5th check from the first: {len(planning)} episodes of model-predictive control in the "
        "real toy world\n"
    )


def _world_model(kind: str, frame_shape: tuple[int, int, int], action_dim: int) -> L.LightningModule:
    """The demo's world model: the small ``ToyWorldModel``, or the diffusers ``DiffusionWorldModel``."""
    if kind == "diffusion":
        from simgate_tracking.models.diffusion import DiffusionWorldModel

        return DiffusionWorldModel(frame_shape=frame_shape, action_dim=action_dim, context_frames=2)
    return ToyWorldModel(frame_shape=frame_shape, action_dim=action_dim, context_frames=2)


def _takes_words(takes: int) -> str:
    """How the banner names the probe set's real takes: nothing for one take, as the deterministic demo has.

    Example:
        >>> _takes_words(1), _takes_words(4)
        ('', ' x 4 real takes (stochastic world: reality is scored against itself too)')
    """
    return "" if takes == 1 else f" x {takes} real takes (stochastic world: reality is scored against itself too)"


def _fit(trainer: L.Trainer, model: L.LightningModule, data: L.LightningDataModule) -> None:
    with warnings.catch_warnings():
        # a toy dataset in memory needs no loader workers, and the printer shows every alert already
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".* at step \d+: \w+ = [-\d.]+ \(threshold")
        trainer.fit(model, datamodule=data)
