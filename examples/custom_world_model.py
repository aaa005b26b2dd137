"""Plug your own world model into the gate through one function: ``rollout(context, actions, generator=None)``.

Your model has its own API (here ``MyVideoModel.generate(frame, controls, noise)``, a next-frame predictor that
samples each episode's lighting from noise, as a generative model samples what its context leaves open). A few
lines adapt it: take the context frames (B, T0, C, H, W) and actions (B, T, A), return frames
(B, T, C, H, W) in [0, 1], and draw each episode's noise from ``generator[i]``, the episode's own seeded
generator, so that the same reset and seed give the same rollout whatever else is in the batch.

The example then scores three world models on the same probe set:

1. your model through the adapter, trained for a moment with ``SimulatorGateCallback(rollout_fn=...)``;
2. the same model behind a careless adapter that keeps its own random generator (the seed is ignored): reset
   reproducibility fails and the gate names it;
3. the toy world itself, re-simulated from each episode's seed: every axis scores 1, the ceiling.

    python examples/custom_world_model.py            # about a minute on a CPU
    python examples/custom_world_model.py --fast     # a few seconds
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from simgate_tracking import evaluate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.toy import ToyWorld, ToyWorldDataModule, make_probe_set, reached_goal


class MyVideoModel(nn.Module):
    """Stands for your model: one frame per control from the previous frame, lit by a sampled colour shift."""

    def __init__(self, channels: int = 3, action_dim: int = 5, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels + action_dim, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 3, padding=1),
        )

    def generate(self, frame: Tensor, controls: Tensor, noise: Tensor) -> Tensor:
        """(B, C, H, W) last frame, (B, T, A) controls, (B, C) lighting noise -> (B, T, C, H, W) frames."""
        frames = []
        for t in range(controls.shape[1]):
            drive = controls[:, t, :, None, None].expand(-1, -1, *frame.shape[-2:])
            frame = (frame + self.net(torch.cat([frame, drive], dim=1))).clamp(0, 1)
            frames.append((frame + noise[:, :, None, None]).clamp(0, 1))
        return torch.stack(frames, dim=1)


def as_rollout(model: MyVideoModel, noise_scale: float = 0.1):
    """The adapter: the gate's rollout signature on top of your model's own API."""

    def rollout(context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        channels = context.shape[2]
        if generator is None:  # called outside the gate: any noise will do
            noise = torch.randn(context.shape[0], channels, device=context.device)
        else:  # one seeded generator per episode: the same reset and seed give the same noise
            noise = torch.stack([torch.randn(channels, generator=g, device=context.device) for g in generator])
        return model.generate(context[:, -1], actions, noise_scale * noise)

    return rollout


def careless_rollout(model: MyVideoModel, noise_scale: float = 0.1):
    """A common bug: the adapter keeps one generator of its own, so a second pass over a reset draws other noise."""
    own = torch.Generator().manual_seed(0)

    def rollout(context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        noise = torch.randn(context.shape[0], context.shape[2], generator=own).to(context.device)
        return model.generate(context[:, -1], actions, noise_scale * noise)

    return rollout


class MyTrainingModule(L.LightningModule):
    """Your training code; the gate only needs the rollout function."""

    def __init__(self) -> None:
        super().__init__()
        self.model = MyVideoModel()

    def _frames(self, batch: dict[str, Tensor]) -> Tensor:
        context = batch["context"]
        unlit = context.new_zeros(context.shape[0], context.shape[2])  # train on the mean lighting
        return self.model.generate(context[:, -1], batch["actions"], unlit)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = F.mse_loss(self._frames(batch), batch["future"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.log("val/loss", F.mse_loss(self._frames(batch), batch["future"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=2e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a few seconds: tiny data, one epoch")
    parser.add_argument("--out", default="runs", help="where logs go")
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)
    probe = make_probe_set(num_episodes=6 if args.fast else 24, num_branches=3, horizon=10, seed=0)

    module = MyTrainingModule()
    gate = SimulatorGateCallback(probe, rollout_fn=as_rollout(module.model), task_fn=reached_goal)
    trainer = L.Trainer(
        default_root_dir=args.out,
        max_epochs=1 if args.fast else 4,
        callbacks=[gate],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=not args.fast,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=ToyWorldDataModule(train_windows=32 if args.fast else 512, val_windows=16))
    print("1. your model, after training, through the adapter:")
    print(gate.history[-1])

    careless = evaluate(careless_rollout(module.model), probe, task_fn=reached_goal)
    print("\n2. the same model behind an adapter that ignores the episode seeds:")
    print(careless)
    if careless.scores["reset_reproducibility"] >= gate.history[-1].scores["reset_reproducibility"]:
        raise SystemExit("ignoring the seeds should cost reset reproducibility")

    reality = evaluate(ToyWorld().rollout, probe, task_fn=reached_goal)
    print("\n3. the toy world itself, re-simulated from each episode's seed (the ceiling):")
    print(reality)


if __name__ == "__main__":
    torch.set_num_threads(1)  # a small model: one thread is fastest, and never thrashes a busy machine
    main()
