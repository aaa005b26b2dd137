"""A synthetic rollout bundle: what one gate check hands the scorecard, at a chosen size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Size:
    """Episodes x branches x steps x channels x height x width, and objects per episode."""

    episodes: int = 16
    branches: int = 3
    steps: int = 16
    channels: int = 3
    height: int = 64
    width: int = 64
    objects: int = 4

    @classmethod
    def parse(cls, text: str) -> Size:
        """Read ``"16x3x16x3x64x64"`` (episodes x branches x steps x C x H x W)."""
        parts = [int(part) for part in text.lower().split("x")]
        if len(parts) != 6 or min(parts) < 1:
            raise ValueError(f"Expected a size like 16x3x16x3x64x64 (B x K+1 x T x C x H x W) but got {text!r}")
        return cls(*parts)

    def __str__(self) -> str:
        dims = (self.episodes, self.branches, self.steps, self.channels, self.height, self.width)
        return "x".join(str(n) for n in dims)

    @property
    def frames(self) -> int:
        """Frames in one bundle of rollouts (every branch)."""
        return self.episodes * self.branches * self.steps

    @property
    def rollout_bytes(self) -> int:
        """Bytes of one bundle of float32 rollouts (every branch)."""
        return self.frames * self.channels * self.height * self.width * 4


@dataclass(frozen=True)
class Bundle:
    """Model rollouts, real futures, a second pass, object masks and task outcomes, as the scorecard takes them."""

    preds: Tensor  # (B, K+1, T, C, H, W)
    target: Tensor  # (B, K+1, T, C, H, W); with R real takes (B, R, K+1, T, C, H, W)
    second: Tensor  # (B, T, C, H, W)
    masks: Tensor  # (B, T, N, H, W) bool; with takes (B, R, T, N, H, W)
    visible: Tensor  # (B, T, N) bool; with takes (B, R, T, N)
    task_pred: Tensor  # (B,) bool
    task_real: Tensor  # (B,) bool; with takes (B, R)

    @property
    def real_reference(self) -> Tensor:
        """The real reference branch, (B, T, C, H, W): take 0's when ``target`` holds real takes."""
        return self.target[:, 0, 0] if self.target.ndim == 7 else self.target[:, 0]

    def feed(self, card: Any) -> None:
        """Update a ``SimulatorScorecard`` with the whole bundle, as a gate check does."""
        card.update(
            self.preds,
            self.target,
            second=self.second,
            masks=self.masks,
            visible=self.visible,
            task_pred=self.task_pred,
            task_real=self.task_real,
        )

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> Bundle:
        """The same bundle on ``device``, frames in ``dtype``."""
        frames = {"preds": self.preds, "target": self.target, "second": self.second}
        moved = {name: x.to(device=device, dtype=dtype) for name, x in frames.items()}
        rest = {name: getattr(self, name).to(device) for name in ("masks", "visible", "task_pred", "task_real")}
        return Bundle(**moved, **rest)


def _scene(size: Size, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor, int]:
    """A noisy background (B, K+1, T, C, H, W), the objects' start corners (B, K+1, N, 2), colours and side."""
    b, k, t, c, h, w, n = (
        size.episodes,
        size.branches,
        size.steps,
        size.channels,
        size.height,
        size.width,
        size.objects,
    )
    background = torch.rand(b, k, t, c, h, w, generator=g).mul_(0.2)
    side = max(2, min(h, w) // 8)
    start = torch.randint(0, max(1, min(h, w) - side - t), (b, k, n, 2), generator=g)
    colours = torch.rand(b, n, c, 1, 1, generator=g)
    return background, start, colours, side


def _draw(frames: Tensor, start: Tensor, colours: Tensor, side: int) -> Tensor:
    """Draw the moving squares into ``frames`` in place; their masks on the reference branch, (B, T, N, H, W) bool."""
    b, k, t, _, h, w = frames.shape
    n = start.shape[2]
    masks = torch.zeros(b, t, n, h, w, dtype=torch.bool)
    for step in range(t):
        for obj in range(n):
            for branch in range(k):
                # every branch moves the objects its own way: the actions matter
                top, left = (start[:, branch, obj] + step * (branch + 1) // 2).clamp(max=min(h, w) - side).unbind(-1)
                for e in range(b):
                    y0, x0 = int(top[e]), int(left[e])
                    frames[e, branch, step, :, y0 : y0 + side, x0 : x0 + side] = colours[e, obj]
                    if branch == 0:
                        masks[e, step, obj, y0 : y0 + side, x0 : x0 + side] = True
    for obj in range(n - 1):
        masks[:, :, obj] &= ~masks[:, :, obj + 1 :].any(dim=2)  # later objects are drawn over earlier ones
    return masks


def make_bundle(size: Size, seed: int = 0) -> Bundle:
    """Moving squares on a noisy background; the model is reality plus a little noise, its second pass a bit more."""
    g = torch.Generator().manual_seed(seed)
    target, start, colours, side = _scene(size, g)
    masks = _draw(target, start, colours, side)
    preds = (target + 0.02 * torch.randn(target.shape, generator=g)).clamp_(0, 1)
    second = (preds[:, 0] + 0.01 * torch.randn(preds[:, 0].shape, generator=g)).clamp_(0, 1)
    b = size.episodes
    return Bundle(
        preds=preds,
        target=target,
        second=second,
        masks=masks,
        visible=masks.flatten(3).any(dim=3),
        task_pred=torch.rand(b, generator=g) > 0.5,
        task_real=torch.rand(b, generator=g) > 0.5,
    )


def make_takes_bundle(size: Size, takes: int = 4, seed: int = 0) -> Bundle:
    """``make_bundle``'s world filmed ``takes`` times: a stochastic world for ``SimulatorScorecard(num_takes=R)``.

    Take 0 is ``make_bundle(size, seed)``'s reality, and the model, its second pass and its task outcomes are that
    bundle's. In every other take the world's randomness is drawn afresh, the same for every branch of the take: the
    background noise changes, and the last object (drawn over the others) starts up to one object side from its
    take-0 place, so object persistence searches shifts for it; the other objects follow the actions alone.
    ``target`` is (B, R, K+1, T, C, H, W), ``masks`` (B, R, T, N, H, W), ``visible`` (B, R, T, N), ``task_real`` (B, R).
    """
    one = make_bundle(size, seed)
    background, start, colours, side = _scene(size, torch.Generator().manual_seed(seed))  # make_bundle's scene
    g = torch.Generator().manual_seed(seed + 1)
    reach = min(size.height, size.width) - side
    frames, masks = [one.target], [one.masks]
    for _ in range(1, takes):
        noise = 0.05 * torch.randn(background.shape, generator=g)
        take = (background + noise).clamp_(0, 1)
        scattered = start.clone()
        # the stochastic object's start: one offset per episode, shared by the branches of the take
        offset = torch.randint(-side, side + 1, (size.episodes, 1, 2), generator=g)
        scattered[:, :, -1] = (scattered[:, :, -1] + offset).clamp(0, reach)
        masks.append(_draw(take, scattered, colours, side))
        frames.append(take)
    task_real = torch.cat([one.task_real.unsqueeze(1), torch.rand(size.episodes, takes - 1, generator=g) > 0.5], 1)
    mask = torch.stack(masks, dim=1)
    return Bundle(
        preds=one.preds,
        target=torch.stack(frames, dim=1),
        second=one.second,
        masks=mask,
        visible=mask.flatten(4).any(dim=4),
        task_pred=one.task_pred,
        task_real=task_real,
    )
