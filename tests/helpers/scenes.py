"""Seeded probe scenes with exact ground truth, built by the tests themselves.

A scene is a small action-conditioned world: a textured background, an agent moved by actions, coloured objects
in lanes (some moving, one crossing behind an occluder), K+1 branches that differ by the agent's actions, and per
episode a policy group, a real return and a real success flag. Every frame comes from one renderer, so defects
can re-render the same world with one thing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from simgate_tracking import ProbeSet

AGENT_SIZE, OBJECT_SIZE, OCCLUDER_WIDTH = 3, 4, 6
AGENT_STEP = 2  # pixels per unit of action
SUCCESS_PIXELS = 6  # the task: move the agent at least this far right over the horizon
AGENT_COLOUR = torch.tensor([0.97, 0.97, 0.97])
OCCLUDER_COLOUR = torch.tensor([0.45, 0.42, 0.40])
PALETTE = torch.tensor([[0.90, 0.15, 0.10], [0.10, 0.30, 0.95], [0.95, 0.85, 0.10], [0.10, 0.80, 0.25]])


@dataclass(frozen=True)
class SceneConfig:
    """How big a scene is; ``seed`` picks everything random in it."""

    episodes: int = 8
    branches: int = 3
    steps: int = 8
    context_steps: int = 2
    size: int = 32
    groups: int = 4
    seed: int = 0


@dataclass(frozen=True)
class Scene:
    """Real futures and everything needed to re-render them.

    Shapes: N episodes, K+1 branches, T future steps, M = 3 objects, frames (3, S, S).
    """

    config: SceneConfig
    context: Tensor  # (N, T0, 3, S, S)
    actions: Tensor  # (N, K+1, T, 2), branch 0 the reference actions
    targets: Tensor  # (N, K+1, T, 3, S, S)
    masks: Tensor  # (N, T, M, S, S) bool, reference branch
    visible: Tensor  # (N, T, M) bool
    success: Tensor  # (N,) bool, reference branch
    returns: Tensor  # (N,) float, reference branch
    groups: Tensor  # (N,) long policy ids
    seeds: Tensor  # (N,) long
    background: Tensor  # (N, 3, S, S)
    occluder_x: Tensor  # (N,) long, left column of the occluder
    agent_xy: Tensor  # (N, K+1, T0 + T, 2) long, top-left corner
    object_xy: Tensor  # (N, T0 + T, M, 2) long
    colours: Tensor  # (N, M, 3)

    def probe_set(self, task: str | None = "success") -> ProbeSet:
        """The scene as a user's probe set; ``task`` picks success flags, returns with groups, or neither."""
        outcomes = {"success": self.success, "returns": self.returns, None: None}[task]
        return ProbeSet(
            context=self.context,
            actions=self.actions,
            targets=self.targets,
            masks=self.masks,
            visible=self.visible,
            outcomes=outcomes,
            groups=self.groups if task == "returns" else None,
            seeds=self.seeds,
            name=f"scene-{self.config.seed}",
        )


def make_scene(config: SceneConfig | None = None, **overrides: int) -> Scene:
    """Build a seeded scene; keyword overrides change single fields of the config."""
    config = replace(config or SceneConfig(), **overrides)
    g = torch.Generator().manual_seed(config.seed)
    n, s = config.episodes, config.size
    background = torch.stack([_background(s, g) for _ in range(n)])
    occluder_x = torch.randint(s * 3 // 8, s // 2 + 1, (n,), generator=g)
    colours = torch.stack([PALETTE[torch.randperm(len(PALETTE), generator=g)[:3]] for _ in range(n)])
    groups = torch.arange(n) % config.groups
    actions = torch.stack([_actions(config, int(groups[i]), g) for i in range(n)])
    agent_xy = _agent_paths(actions, config, g)
    object_xy = torch.stack([_object_paths(config, int(occluder_x[i]), g) for i in range(n)])
    full = render(background, occluder_x, agent_xy, object_xy, colours)
    t0 = config.context_steps
    masks = object_masks(occluder_x, agent_xy[:, 0, t0:], object_xy[:, t0:], s)
    horizon = agent_xy[:, 0, t0:, 0].float()
    returns = (horizon[:, -1] - horizon[:, 0]) / s
    return Scene(
        config=config,
        context=full[:, 0, :t0].contiguous(),
        actions=actions,
        targets=full[:, :, t0:].contiguous(),
        masks=masks,
        visible=masks.flatten(3).any(dim=3),
        success=returns * s >= SUCCESS_PIXELS,
        returns=returns,
        groups=groups,
        seeds=torch.arange(n, dtype=torch.long) * 7 + 1000 * config.seed,
        background=background,
        occluder_x=occluder_x,
        agent_xy=agent_xy,
        object_xy=object_xy,
        colours=colours,
    )


def _background(size: int, g: torch.Generator) -> Tensor:
    """A muted gradient plus a sinusoidal texture: a flat background would make vanished objects trivial."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = 0.3 + 0.15 * torch.rand(3, 1, 1, generator=g)
    angle, phase = 6.2832 * torch.rand(2, generator=g)
    freq = 2 + 3 * torch.rand(2, generator=g)
    gradient = 0.12 * (torch.cos(angle) * xx + torch.sin(angle) * yy)
    texture = 0.06 * torch.sin(6.2832 * (freq[0] * xx + freq[1] * yy) + phase)
    tint = torch.tensor([1.0, 0.8, 0.6])[torch.randperm(3, generator=g)].view(3, 1, 1)
    return (base + tint * (gradient + texture)).clamp(0.1, 0.7)


def _actions(config: SceneConfig, group: int, g: torch.Generator) -> Tensor:
    """Reference actions of policy ``group`` (moves right on 2*group steps) and K counterfactual sequences."""
    t = config.steps
    reference = torch.zeros(t, 2)
    right = torch.randperm(t, generator=g)[: min(2 * group, t)]
    reference[right, 0] = 1.0
    reference[:, 1] = torch.randint(-1, 2, (t,), generator=g).float()
    branches = [reference]
    for k in range(1, config.branches):
        # each counterfactual heads up or down: branches differ from the reference and from one another
        counterfactual = torch.zeros(t, 2)
        counterfactual[:, 0] = torch.randint(-1, 2, (t,), generator=g).float()
        counterfactual[:, 1] = 1.0 if k % 2 else -1.0
        counterfactual[: (k - 1) // 2, 1] = 0.0
        branches.append(counterfactual)
    return torch.stack(branches)


def _agent_paths(actions: Tensor, config: SceneConfig, g: torch.Generator) -> Tensor:
    n, branches, t, _ = actions.shape
    limit = config.size - AGENT_SIZE
    start = torch.stack(
        [
            torch.randint(3, config.size // 4 + 1, (n,), generator=g),
            torch.randint(limit // 3, limit * 2 // 3, (n,), generator=g),
        ],
        dim=1,
    )
    paths = [start.unsqueeze(1).expand(n, branches, 2)] * config.context_steps
    position = start.unsqueeze(1).expand(n, branches, 2)
    for step in range(t):
        position = (position + AGENT_STEP * actions[:, :, step].long()).clamp(0, limit)
        paths.append(position)
    return torch.stack(paths, dim=2)


def _object_paths(config: SceneConfig, occluder_x: int, g: torch.Generator) -> Tensor:
    """Object 0 crosses behind the occluder early in the horizon; object 1 drifts the other way; object 2 stays."""
    s, t0 = config.size, config.context_steps
    time = torch.arange(-t0, config.steps)
    lanes = torch.tensor([s * 3 // 32, s * 13 // 32, s * 23 // 32])[torch.randperm(3, generator=g)]
    rightward = bool(torch.randint(0, 2, (1,), generator=g))
    jitter = int(torch.randint(0, 2, (1,), generator=g))
    if rightward:
        x0 = occluder_x - OBJECT_SIZE - 1 - jitter + 2 * time
    else:
        x0 = occluder_x + OCCLUDER_WIDTH + 1 + jitter - 2 * time
    start1 = int(torch.randint(s // 4, s // 2, (1,), generator=g))
    x1 = start1 + (-1 if rightward else 1) * time
    clear = [x for x in range(1, s - OBJECT_SIZE) if x + OBJECT_SIZE < occluder_x or x > occluder_x + OCCLUDER_WIDTH]
    x2 = torch.full_like(time, clear[int(torch.randint(0, len(clear), (1,), generator=g))])
    xs = torch.stack([x0, x1, x2], dim=1).clamp(0, s - OBJECT_SIZE)
    return torch.stack([xs, lanes.expand_as(xs)], dim=2)


def render(
    background: Tensor,
    occluder_x: Tensor,
    agent_xy: Tensor,
    object_xy: Tensor,
    colours: Tensor,
    alpha: Tensor | None = None,
) -> Tensor:
    """Frames (N, K+1, T, 3, S, S): background, objects (with opacity ``alpha`` (N, T, M)), occluder, agent on top.

    ``colours`` is (N, M, 3) or per step (N, T, M, 3). Objects do not depend on the agent's actions.
    """
    n, branches, t, _ = agent_xy.shape
    m = object_xy.shape[2]
    colours = colours.unsqueeze(1).expand(n, t, m, 3) if colours.ndim == 3 else colours
    alpha = torch.ones(n, t, m) if alpha is None else alpha
    scenery = background.unsqueeze(1).repeat(1, t, 1, 1, 1)
    for i in range(n):
        for step in range(t):
            frame = scenery[i, step]
            for j in range(m):
                x, y = object_xy[i, step, j].tolist()
                patch = frame[:, y : y + OBJECT_SIZE, x : x + OBJECT_SIZE]
                a = alpha[i, step, j]
                patch.copy_(a * colours[i, step, j].view(3, 1, 1) + (1 - a) * patch)
            ox = int(occluder_x[i])
            frame[:, :, ox : ox + OCCLUDER_WIDTH] = OCCLUDER_COLOUR.view(3, 1, 1)
    frames = scenery.unsqueeze(1).repeat(1, branches, 1, 1, 1, 1)
    for i in range(n):
        for k in range(branches):
            for step in range(t):
                x, y = agent_xy[i, k, step].tolist()
                frames[i, k, step, :, y : y + AGENT_SIZE, x : x + AGENT_SIZE] = AGENT_COLOUR.view(3, 1, 1)
    return frames


def object_masks(occluder_x: Tensor, agent_xy: Tensor, object_xy: Tensor, size: int) -> Tensor:
    """Exact masks (N, T, M, S, S) of what shows of each object: later objects, occluder and agent hide it."""
    n, t, m, _ = object_xy.shape
    masks = torch.zeros(n, t, m, size, size, dtype=torch.bool)
    for i in range(n):
        for step in range(t):
            for j in range(m):
                x, y = object_xy[i, step, j].tolist()
                masks[i, step, :, y : y + OBJECT_SIZE, x : x + OBJECT_SIZE] = False
                masks[i, step, j, y : y + OBJECT_SIZE, x : x + OBJECT_SIZE] = True
            ox = int(occluder_x[i])
            masks[i, step, :, :, ox : ox + OCCLUDER_WIDTH] = False
            x, y = agent_xy[i, step].tolist()
            masks[i, step, :, y : y + AGENT_SIZE, x : x + AGENT_SIZE] = False
    return masks


def agent_x(frames: Tensor) -> Tensor:
    """Column of the agent's centre in every frame (..., 3, S, S) -> (...), found by its colour; -1 if absent."""
    agent = (frames.amin(dim=-3) > 0.85).float()
    columns = torch.arange(frames.shape[-1], dtype=frames.dtype)
    count = agent.sum(dim=(-2, -1))
    centre = (agent * columns).sum(dim=(-2, -1)) / count.clamp_min(1)
    return torch.where(count > 0, centre, torch.full_like(centre, -1.0))


def judge_returns(frames: Tensor) -> Tensor:
    """A task judge on futures (B, T, 3, S, S): how far right the agent moved over the horizon, in frame widths."""
    x = agent_x(frames)
    return (x[:, -1] - x[:, 0]) / frames.shape[-1]


def judge_success(frames: Tensor) -> Tensor:
    """A task judge on futures (B, T, 3, S, S): did the agent move at least ``SUCCESS_PIXELS`` to the right?"""
    return judge_returns(frames) * frames.shape[-1] >= SUCCESS_PIXELS - 0.5
