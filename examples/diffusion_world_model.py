"""Gate a diffusion world model in training: a diffusers UNet under EDM learns the toy world, beside ToyWorldModel.

Both models train on the same toy-world windows with ``SimulatorGateCallback`` (the same probe set),
``GateEarlyStopping`` and TensorBoard, as two runs under one folder: ``tensorboard --logdir OUT`` shows their curves
side by side. At the end the check-by-check weakest axis of both runs is printed, then the last check of each, axis
by axis, with which model wins it.

    python examples/diffusion_world_model.py --fast                 # under 2 minutes on 2 CPU cores
    python examples/diffusion_world_model.py                        # the run recorded in docs/diffusion.md
    python examples/diffusion_world_model.py --stochastic           # the stochastic world: 4 real takes per branch
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from simgate_tracking import AXES
from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from simgate_tracking.models import DiffusionWorldModel
from simgate_tracking.toy import ToyWorldDataModule, ToyWorldModel, make_probe_set, reached_goal


@dataclass(frozen=True)
class Settings:
    episodes: int
    horizon: int
    windows: int
    window_horizon: int
    epochs: int


FAST = Settings(episodes=4, horizon=6, windows=32, window_horizon=4, epochs=2)
FULL = Settings(episodes=24, horizon=10, windows=1024, window_horizon=8, epochs=6)


def train(name: str, model: L.LightningModule, args: argparse.Namespace, settings: Settings, probe) -> list:
    L.seed_everything(0, verbose=False)
    data = ToyWorldDataModule(
        train_windows=settings.windows,
        val_windows=16,
        batch_size=16,
        horizon=settings.window_horizon,
        stochastic=args.stochastic,
    )
    gate = SimulatorGateCallback(probe, task_fn=reached_goal)
    stopper = GateEarlyStopping(patience=3, grace_checks=settings.epochs)  # a report, not a stop, in this example
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        logger=TensorBoardLogger(args.out, name=name),
        callbacks=[gate, stopper],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=5,
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    print(f"{name}: {len(gate.history)} checks in {time.perf_counter() - started:.0f} s, logs in {trainer.log_dir}")
    return gate.history


def draw_curves(out: str, png: Path) -> None:
    """Every axis over training, both models on one panel each, read back from their TensorBoard runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    figure, panels = plt.subplots(1, len(AXES), figsize=(3.2 * len(AXES), 2.8), sharey=True)
    for name, style in (("diffusion", "o-"), ("toy", "s--")):
        events = EventAccumulator(str(sorted(Path(out, name).glob("version_*"))[-1]), size_guidance={"scalars": 0})
        events.Reload()
        for panel, axis in zip(panels, AXES, strict=True):
            logged = events.Scalars(f"simgate/{axis}")
            panel.plot([e.step for e in logged], [e.value for e in logged], style, label=name, markersize=3)
    for panel, axis in zip(panels, AXES, strict=True):
        panel.axhline(0.65, color="grey", linewidth=0.8, linestyle=":")
        panel.set_title(axis, fontsize=9)
        panel.set_xlabel("step", fontsize=8)
        panel.set_ylim(-0.02, 1.02)
    panels[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(png, dpi=110)
    print(f"curves of both runs: {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="tiny data and probe set, two epochs")
    parser.add_argument("--out", default="runs", help="where the TensorBoard runs go")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs, one gate check each")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per sampled frame (2)")
    parser.add_argument("--stochastic", action="store_true", help="the stochastic toy world, 4 real takes")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = FAST if args.fast else FULL
    if args.epochs is not None:
        settings = Settings(**{**settings.__dict__, "epochs": args.epochs})
    probe = make_probe_set(
        num_episodes=settings.episodes,
        num_branches=3,
        horizon=settings.horizon,
        seed=0,
        takes=4 if args.stochastic else 1,
        stochastic=args.stochastic,
    )
    print(f"probe set {probe.name}: {len(probe)} episodes, manifest {probe.manifest_hash[:12]}")
    frames = {"frame_shape": probe.frame_shape, "action_dim": probe.action_dim, "context_frames": 2}
    L.seed_everything(0, verbose=False)
    diffusion = train("diffusion", DiffusionWorldModel(**frames, num_inference_steps=args.steps), args, settings, probe)
    L.seed_everything(0, verbose=False)
    toy = train("toy", ToyWorldModel(**frames), args, settings, probe)

    print("\ncheck  diffusion (min axis, weakest)          toy (min axis, weakest)")
    for number, (d, t) in enumerate(zip(diffusion, toy, strict=True), start=1):
        print(f"{number:>5}  {d.min_axis:.3f} {d.weakest_axis:<28} {t.min_axis:.3f} {t.weakest_axis}")
    last_d, last_t = diffusion[-1], toy[-1]
    print(f"\nlast check            diffusion    toy    wins{'         reality' if args.stochastic else ''}")
    for axis in AXES:
        d, t = last_d.scores[axis], last_t.scores[axis]
        winner = "diffusion" if d > t + 0.005 else "toy" if t > d + 0.005 else "tie"
        reality = f"   {last_d.real_baseline.get(axis, 1.0):.3f}" if args.stochastic else ""
        print(f"{axis:<22}  {d:.3f}      {t:.3f}  {winner:<9}{reality}".rstrip())
    for name in ("psnr", "ssim"):
        print(f"{name:<22}  {last_d.extras[name]:.3f}      {last_t.extras[name]:.3f}  (not gated)")
    print(f"verdict                {'PASS' if last_d.passed else 'FAIL'}        {'PASS' if last_t.passed else 'FAIL'}")
    if importlib.util.find_spec("matplotlib") is not None:  # the `media` extra
        draw_curves(args.out, Path(args.out) / "diffusion-vs-toy.png")


if __name__ == "__main__":
    main()
