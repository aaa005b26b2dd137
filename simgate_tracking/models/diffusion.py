"""A small DIAMOND-style diffusion world model built from diffusers parts: a next-frame denoiser under EDM."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from simgate_tracking._utils import check_positive_int
from simgate_tracking.models.diffusers_rollout import DiffusersRollout, import_diffusers
from simgate_tracking.models.schedule import one_cycle

SIGMA_DATA = 0.5  # EDM's data scale for frames in [-1, 1]
NOISE_LEVEL_SCALE = 100.0  # EDM's c_noise = log(sigma) / 4 spans ~2: spread over the UNet's sinusoidal embedding
TRAIN_LOG_SIGMA = (-0.4, 1.2)  # training noise levels: log-normal, as DIAMOND (mean, std of log sigma)


def _positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"Expected argument `{name}` to be a positive float but got {value!r}")
    return float(value)


def _check_frame_shape(frame_shape: object) -> tuple[int, int, int]:
    if (
        not isinstance(frame_shape, (tuple, list))
        or len(frame_shape) != 3
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in frame_shape)
    ):
        raise ValueError(f"Expected argument `frame_shape` to be (C, H, W) positive ints but got {frame_shape!r}")
    return int(frame_shape[0]), int(frame_shape[1]), int(frame_shape[2])


def _check_channels(channels: object) -> tuple[int, ...]:
    if (
        not isinstance(channels, (tuple, list))
        or len(channels) < 1
        or any(isinstance(c, bool) or not isinstance(c, int) or c < 8 or c % 8 for c in channels)
    ):
        raise ValueError(
            f"Expected argument `channels` to be a non-empty tuple of multiples of 8 (one per UNet level) but got "
            f"{channels!r}"
        )
    return tuple(int(c) for c in channels)


class DiffusionWorldModel(L.LightningModule):
    r"""A small DIAMOND-style diffusion world model: a diffusers ``UNet2DModel`` denoises the next frame under EDM.

    Every frame is sampled from noise by a diffusers ``EDMEulerScheduler`` in ``num_inference_steps`` Euler steps
    (DIAMOND uses 3; 2 keeps the gate under 10% of training time at ``simgate demo``'s settings, see the diffusion
    page of the documentation). The UNet sees the noisy frame with the last ``context_frames`` frames concatenated
    on the channels; the action goes through a small MLP into the UNet's class embedding
    (``class_embed_type="identity"``), which is added to its noise-level embedding. Training is EDM's denoising
    loss on every step of a window (teacher forcing: the history is real frames), with pixels that change from the
    previous frame weighted up by ``motion_weight``, as :class:`~simgate_tracking.toy.ToyWorldModel` does.

    It is constructed and trained like ``ToyWorldModel``: batches of dicts with ``context`` (B, T0, C, H, W),
    ``actions`` (B, T, A) and ``future`` (B, T, C, H, W), frames in [0, 1]. ``rollout`` samples autoregressively
    through :class:`~simgate_tracking.models.DiffusersRollout`, so all its noise comes from the gate's per-episode
    generators: the same reset and seed give bitwise the same rollout (in the same batch), the branches of an episode
    share their noise, another seed gives another sample. On CUDA the UNet runs under bf16 autocast. Nothing is
    downloaded: the network is built from its config.

    Args:
        frame_shape: (C, H, W) of a frame; H and W divisible by 2 ** (levels - 1).
        action_dim: A, the length of an action vector.
        context_frames: T0, frames the next one is conditioned on.
        channels: The UNet's channels per level, each a multiple of 8.
        num_inference_steps: Euler steps per sampled frame.
        sigma_min: The smallest noise level of sampling.
        sigma_max: The noise level sampling starts from.
        learning_rate: AdamW's learning rate (the peak of the one-cycle schedule under a Trainer).
        motion_weight: Extra loss weight of pixels that differ from the previous frame.
        autocast: Run the UNet under bf16 autocast on CUDA when sampling.

    Raises:
        ValueError: If an argument is out of range.
        ModuleNotFoundError: If diffusers is not installed (the ``diffusion`` extra).

    Example:
        >>> import torch
        >>> model = DiffusionWorldModel(frame_shape=(3, 16, 16), action_dim=5, context_frames=2, channels=(16, 32))
        >>> seeds = [torch.Generator().manual_seed(s) for s in (0, 0, 1)]
        >>> frames = model.rollout(torch.rand(1, 2, 3, 16, 16).expand(3, -1, -1, -1, -1), torch.zeros(3, 4, 5), seeds)
        >>> tuple(frames.shape), torch.equal(frames[0], frames[1]), torch.equal(frames[0], frames[2])
        ((3, 4, 3, 16, 16), True, False)
    """

    def __init__(
        self,
        frame_shape: tuple[int, int, int] = (3, 32, 32),
        action_dim: int = 5,
        context_frames: int = 2,
        channels: tuple[int, ...] = (16, 32),
        num_inference_steps: int = 2,
        sigma_min: float = 0.002,
        sigma_max: float = 5.0,
        learning_rate: float = 2e-3,
        motion_weight: float = 10.0,
        autocast: bool = True,
    ) -> None:
        super().__init__()
        diffusers = import_diffusers()
        self.frame_shape = _check_frame_shape(frame_shape)
        self.action_dim = check_positive_int(action_dim, "action_dim")
        self.context_frames = check_positive_int(context_frames, "context_frames")
        channels = _check_channels(channels)
        self.num_inference_steps = check_positive_int(num_inference_steps, "num_inference_steps")
        sigma_min, sigma_max = _positive_float("sigma_min", sigma_min), _positive_float("sigma_max", sigma_max)
        if not sigma_min < sigma_max:
            raise ValueError(f"Expected argument `sigma_max` to be above sigma_min={sigma_min} but got {sigma_max}")
        self.learning_rate = _positive_float("learning_rate", learning_rate)
        if isinstance(motion_weight, bool) or not isinstance(motion_weight, (int, float)) or motion_weight < 0:
            raise ValueError(f"Expected argument `motion_weight` to be a float >= 0 but got {motion_weight!r}")
        self.motion_weight = float(motion_weight)
        if not isinstance(autocast, bool):
            raise ValueError(f"Expected argument `autocast` to be a bool but got {autocast!r}")
        self.autocast = autocast
        c, h, w = self.frame_shape
        step = 2 ** (len(channels) - 1)
        if h % step or w % step:
            raise ValueError(
                f"Expected argument `frame_shape` to have H and W divisible by {step} ({len(channels)} UNet levels) "
                f"but got {frame_shape!r}"
            )
        self.save_hyperparameters()
        self.unet = diffusers.UNet2DModel(
            sample_size=(h, w),
            in_channels=c * (context_frames + 1),
            out_channels=c,
            block_out_channels=channels,
            down_block_types=("DownBlock2D",) * len(channels),
            up_block_types=("UpBlock2D",) * len(channels),
            layers_per_block=1,
            norm_num_groups=8,
            class_embed_type="identity",
            add_attention=False,  # attention at these sizes costs more CPU time than it buys
        )
        embed = 4 * channels[0]  # UNet2DModel's time-embedding width, which the class embedding is added to
        self.action_embedding = nn.Sequential(nn.Linear(action_dim, embed), nn.SiLU(), nn.Linear(embed, embed))
        self.scheduler = diffusers.EDMEulerScheduler(
            sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=SIGMA_DATA, prediction_type="epsilon"
        )

    def denoise(self, sample: Tensor, timestep: Tensor, history: Tensor, action: Tensor) -> Tensor:
        """The UNet's output for a scaled noisy frame: the conditioning, as :class:`DiffusersRollout` calls it.

        Args:
            sample: (B, C, H, W) the noisy frame, scaled by EDM's ``c_in``.
            timestep: EDM's ``c_noise`` (a scalar, or one per row).
            history: (B, T0, C, H, W) the previous frames in [-1, 1].
            action: (B, A) the action that leads to the frame.
        """
        timestep = torch.as_tensor(timestep, device=sample.device).float().reshape(-1) * NOISE_LEVEL_SCALE
        inputs = torch.cat([sample, history.flatten(1, 2).to(sample.dtype)], dim=1)
        labels = self.action_embedding(action.to(sample.dtype))
        return self.unet(inputs, timestep, class_labels=labels).sample  # type: ignore[no-any-return]

    def sampler(self, num_inference_steps: int | None = None) -> DiffusersRollout:
        """The UNet and scheduler as a rollout, with ``num_inference_steps`` denoising steps (default: the model's)."""
        steps = self.num_inference_steps if num_inference_steps is None else num_inference_steps
        return DiffusersRollout(self.denoise, self.scheduler, self.context_frames, steps, (-1.0, 1.0), self.autocast)

    def _check_inputs(self, context: Tensor, actions: Tensor) -> None:
        expected = (self.context_frames, *self.frame_shape)
        if context.ndim != 5 or tuple(context.shape[1:]) != expected:
            raise ValueError(
                f"Expected `context` of shape (B, T0, C, H, W) = (B, {', '.join(map(str, expected))}) "
                f"but got {tuple(context.shape)}"
            )
        a = self.action_dim
        if actions.ndim != 3 or actions.shape[0] != context.shape[0] or actions.shape[2] != a:
            raise ValueError(
                f"Expected `actions` of shape (B, T, A) = ({context.shape[0]}, T, {a}) but got {tuple(actions.shape)}"
            )

    def rollout(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """Sample a rollout from ``context`` under ``actions``: (B, T0, C, H, W), (B, T, A) -> (B, T, C, H, W).

        ``generator`` is one seeded generator per episode (the gate passes them); without it the noise comes from
        torch's global RNG.

        Raises:
            ValueError: If the shapes do not fit the model, or ``generator`` is not one generator per episode.
        """
        self._check_inputs(context, actions)
        return self.sampler()(context, actions, generator)

    def _training_pairs(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Every step of every window as (history, action, next frame), frames in [-1, 1], teacher-forced."""
        t0, horizon = self.context_frames, batch["actions"].shape[1]
        frames = torch.cat([batch["context"], batch["future"]], dim=1).float() * 2 - 1
        history = torch.stack([frames[:, t : t + t0] for t in range(horizon)], dim=1).flatten(0, 1)
        return history, batch["actions"].float().flatten(0, 1), frames[:, t0:].flatten(0, 1)

    def _loss(self, batch: dict[str, Tensor]) -> Tensor:
        self._check_inputs(batch["context"], batch["actions"])
        history, action, target = self._training_pairs(batch)
        mean, std = TRAIN_LOG_SIGMA
        sigma = (torch.randn(target.shape[0], 1, 1, 1, device=target.device) * std + mean).exp()
        noisy = target + sigma * torch.randn_like(target)
        output = self.denoise(
            self.scheduler.precondition_inputs(noisy, sigma), self.scheduler.precondition_noise(sigma), history, action
        )
        denoised = self.scheduler.precondition_outputs(noisy, output.float(), sigma)
        # EDM's weighting makes every noise level's loss unit-scale
        weight = (sigma**2 + SIGMA_DATA**2) / (sigma * SIGMA_DATA) ** 2
        moved = (target - history[:, -1]).abs().amax(dim=1, keepdim=True) > 0.1
        weight = weight * (1.0 + self.motion_weight * moved.float())
        return (weight * (denoised - target).square()).mean()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """EDM's denoising loss on every step of the batch's windows."""
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["actions"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The same loss on held-out windows."""
        loss = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["actions"].shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        """AdamW at ``learning_rate``, on a one-cycle schedule over the fit when the number of steps is known."""
        return one_cycle(self, torch.optim.AdamW(self.parameters(), lr=self.learning_rate), self.learning_rate)
