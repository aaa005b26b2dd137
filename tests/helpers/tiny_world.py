"""A tiny action-conditioned world and a world model of it that learns in a few CPU steps, for callback tests.

Reality: each action component pushes the frame along a fixed direction, ``frame_t = context + cumsum(a) @ W*``.
The model learns ``W`` from (context, actions, future) windows; untrained (``W = 0``) it ignores actions.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from simgate_tracking import ProbeSet

C, H, W = 3, 8, 8
A, T, T0 = 2, 4, 1


def true_weights(seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(A, C * H * W, generator=g) * 0.05


def simulate(context: Tensor, actions: Tensor, weights: Tensor) -> Tensor:
    """(B, T0, C, H, W), (B, T, A) -> (B, T, C, H, W), clamped to [0, 1]."""
    drift = actions.cumsum(dim=1) @ weights  # (B, T, C*H*W)
    return (context[:, -1:].flatten(2) + drift).clamp(0, 1).view(actions.shape[0], actions.shape[1], C, H, W)


def make_probe_set(num_episodes: int = 6, branches: int = 3, seed: int = 1, frame_size: int = H) -> ProbeSet:
    g = torch.Generator().manual_seed(seed)
    context = 0.25 + 0.5 * torch.rand(num_episodes, T0, C, frame_size, frame_size, generator=g)
    actions = torch.randn(num_episodes, branches, T, A, generator=g)
    weights = true_weights()
    if frame_size == H:
        targets = torch.stack([simulate(context, actions[:, k], weights) for k in range(branches)], dim=1)
    else:  # frames that do not fit the model
        targets = context.unsqueeze(1).expand(num_episodes, branches, T, C, frame_size, frame_size).clone()
    return ProbeSet(context=context, actions=actions, targets=targets, seeds=torch.arange(num_episodes) + 100)


def make_loader(num_windows: int = 64, seed: int = 2, batch_size: int = 16, shuffle: bool = True) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    context = 0.25 + 0.5 * torch.rand(num_windows, T0, C, H, W, generator=g)
    actions = torch.randn(num_windows, T, A, generator=g)
    future = simulate(context, actions, true_weights())
    return DataLoader(TensorDataset(context, actions, future), batch_size=batch_size, shuffle=shuffle)


class TinyWorldModel(pl.LightningModule):
    """Learns ``W``; ``dropout`` makes training consume RNG; ``noise`` makes rollouts stochastic (seeded)."""

    def __init__(
        self, lr: float = 0.002, dropout: float = 0.0, noise: float = 0.0, nan: bool = False, start: float = 0.0
    ) -> None:
        super().__init__()
        self.weights = nn.Parameter(start * true_weights())
        self.dropout = nn.Dropout(dropout)
        self.lr, self.noise, self.nan = lr, noise, nan

    def rollout(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        frames = simulate(context, actions, self.dropout(self.weights))
        if self.noise and generator is not None:
            noise = torch.stack([torch.randn(frames.shape[1:], generator=g, device=frames.device) for g in generator])
            frames = (frames + self.noise * noise).clamp(0, 1)
        if self.nan:
            frames = frames * float("nan")
        return frames

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        context, actions, future = batch
        loss = (self.rollout(context, actions) - future).square().mean() * 1000
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        context, actions, future = batch
        self.log("val_loss", (self.rollout(context, actions) - future).square().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def train_dataloader(self) -> DataLoader:
        return make_loader()

    def val_dataloader(self) -> DataLoader:
        return make_loader(num_windows=16, seed=3, shuffle=False)


def trainer(tmp_path, callbacks, max_epochs: int = 3, **kwargs) -> pl.Trainer:
    options = dict(
        default_root_dir=tmp_path,
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        deterministic=True,
    )
    options.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **options)


def oracle_rollout(context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
    """Reality itself as a world model, named by the import string "tests.helpers.tiny_world:oracle_rollout"."""
    return simulate(context, actions, true_weights())
