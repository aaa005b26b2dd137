"""A small action-conditioned world model: conv encoder, latent dynamics driven by actions, conv decoder."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from simgate_tracking._utils import check_positive_int
from simgate_tracking.models.schedule import one_cycle

_EPS = 1e-3  # keeps the logit of a saturated context pixel finite


class ToyWorldModel(L.LightningModule):
    r"""A small action-conditioned world model that trains on a CPU in a minute or two.

    The encoder turns the context frames into a spatial latent state at half resolution; each action updates the
    state, :math:`z_{t+1} = z_t + f(z_t, a_t)`, with the action broadcast over the map; the decoder turns every
    state into a change of the last context frame's logits, :math:`P_t = \sigma(\mathrm{logit}(x_{T_0}) +
    g(z_t))`. Before training it copies the last context frame: good pixels, no simulator (it ignores actions).

    It trains on batches of dicts with ``context`` (B, T0, C, H, W), ``actions`` (B, T, A) and ``future``
    (B, T, C, H, W), frames float in [0, 1], by rolling out the whole horizon and taking the mean squared error,
    with pixels that change from the last context frame weighted up (they are the few pixels that matter).

    Args:
        frame_shape: (C, H, W) of a frame.
        action_dim: A, the length of an action vector.
        context_frames: T0, context frames per rollout.
        hidden_channels: Width of every hidden convolution.
        state_channels: Channels of the latent state.
        learning_rate: Adam's learning rate (the peak of the one-cycle schedule).
        motion_weight: Extra loss weight of pixels that differ from the last context frame.
        one_cycle: Under a Trainer with a known number of steps, warm the learning rate up and anneal it over the
            whole fit (one-cycle); otherwise, or with False, keep it constant.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> import torch
        >>> model = ToyWorldModel(frame_shape=(3, 32, 32), action_dim=5, context_frames=2)
        >>> context = torch.rand(4, 2, 3, 32, 32)
        >>> frames = model.rollout(context, torch.zeros(4, 6, 5))
        >>> tuple(frames.shape), bool((frames - context[:, -1:]).abs().max() < 0.01)
        ((4, 6, 3, 32, 32), True)
    """

    def __init__(
        self,
        frame_shape: tuple[int, int, int] = (3, 32, 32),
        action_dim: int = 5,
        context_frames: int = 2,
        hidden_channels: int = 32,
        state_channels: int = 32,
        learning_rate: float = 6e-3,
        motion_weight: float = 10.0,
        one_cycle: bool = True,
    ) -> None:
        super().__init__()
        if len(tuple(frame_shape)) != 3 or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in frame_shape
        ):
            raise ValueError(f"Expected argument `frame_shape` to be (C, H, W) positive ints but got {frame_shape!r}")
        for name, value in (
            ("action_dim", action_dim),
            ("context_frames", context_frames),
            ("hidden_channels", hidden_channels),
            ("state_channels", state_channels),
        ):
            check_positive_int(value, name)
        if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
            raise ValueError(f"Expected argument `learning_rate` to be a positive float but got {learning_rate!r}")
        if not isinstance(motion_weight, (int, float)) or motion_weight < 0:
            raise ValueError(f"Expected argument `motion_weight` to be a float >= 0 but got {motion_weight!r}")
        self.save_hyperparameters()
        channels, hidden, state = frame_shape[0], hidden_channels, state_channels
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]), int(frame_shape[2]))
        self.action_dim, self.context_frames = action_dim, context_frames
        self.learning_rate, self.motion_weight = float(learning_rate), float(motion_weight)
        self.one_cycle = bool(one_cycle)
        self.encoder = nn.Sequential(
            nn.Conv2d(context_frames * channels, hidden, 4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, state, 3, padding=1),
        )
        self.dynamics = nn.Sequential(
            nn.Conv2d(state + action_dim, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(hidden, state, 3, padding=1),
        )
        # each state cell paints its own 2 x 2 pixels: sub-pixel convolution, far cheaper than a transposed conv
        paint = nn.Conv2d(state, 4 * channels, 3, padding=1)
        # an untrained model copies the last context frame: it starts as a renderer, not a simulator
        for parameter in paint.parameters():
            nn.init.zeros_(parameter)
        self.decoder = nn.Sequential(paint, nn.PixelShuffle(2))

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
        """Roll the model out from ``context`` under ``actions``: (B, T0, C, H, W), (B, T, A) -> (B, T, C, H, W).

        The model is deterministic, so ``generator`` (one per episode) is accepted and not needed.

        Raises:
            ValueError: If the shapes do not fit the model.
        """
        self._check_inputs(context, actions)
        context = context.float() / 255.0 if context.dtype == torch.uint8 else context.to(self.dtype)
        b, _, _, h, w = context.shape
        last = torch.logit(context[:, -1].clamp(_EPS, 1 - _EPS))
        state = self.encoder(context.flatten(1, 2))
        frames = []
        for action in actions.to(self.dtype).unbind(dim=1):
            drive = action[:, :, None, None].expand(-1, -1, *state.shape[-2:])
            state = state + self.dynamics(torch.cat([state, drive], dim=1))
            change = self.decoder(state)
            if change.shape[-2:] != (h, w):  # odd frame sizes: the decoder's stride-2 grid rounds down
                change = F.interpolate(change, size=(h, w), mode="bilinear", align_corners=False)
            frames.append(torch.sigmoid(last + change))
        return torch.stack(frames, dim=1)

    def _loss(self, batch: dict[str, Tensor]) -> Tensor:
        frames = self.rollout(batch["context"], batch["actions"])
        future = batch["future"].to(frames.dtype)
        moved = (future - batch["context"][:, -1:].to(frames.dtype)).abs().amax(dim=2, keepdim=True) > 0.05
        weight = 1.0 + self.motion_weight * moved.to(frames.dtype)
        return (weight * (frames - future).square()).mean()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Roll out the batch's horizon and return the weighted frame error."""
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["actions"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """The same error on held-out windows."""
        loss = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["actions"].shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        """Adam at ``learning_rate``, on a one-cycle schedule over the fit when the number of steps is known."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        # warm-up then annealing: the short CPU budget of the demo reaches a given score in far fewer steps
        return one_cycle(self, optimizer, self.learning_rate) if self.one_cycle else optimizer
