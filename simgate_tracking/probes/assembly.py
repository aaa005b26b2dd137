"""Played episodes into probe set fields: one episode at a time, to memory or to a file, from one or more processes."""

from __future__ import annotations

import multiprocessing
import warnings
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Literal

import torch
from torch import Tensor

from simgate_tracking.probe import ProbeSet
from simgate_tracking.probes.actions import ActionEncoder
from simgate_tracking.probes.episodes import Branch
from simgate_tracking.probes.playing import Episode, Plan, play_episodes

Outcome = Literal["success", "return"]
EpisodeFields = dict[str, Any]
_OBJECT_FIELDS = {"masks": -3, "visible": -1}


def stack_takes(per_take: list[Tensor], field: str, seed: int) -> Tensor:
    """Stack one episode's per-take tensors, (R, ...), after checking that every take has take 0's shape."""
    for take, value in enumerate(per_take):
        if value.shape != per_take[0].shape:
            raise ValueError(
                f"Expected every take of the episode with seed {seed} to give `{field}` of take 0's shape "
                f"{tuple(per_take[0].shape)} but take {take} gave {tuple(value.shape)}"
            )
    return torch.stack(per_take)


def _object_masks(episode: Episode, plan: Plan) -> tuple[Tensor, Tensor]:
    """([R,] T, M, H, W) masks and ([R,] T, M) visibility of the reference branch, M this episode's objects.

    Slots are the object keys in first-seen order, over take 0 and then the later takes, so one object has one slot
    in every take.
    """
    tracks = [branches[0].objects for branches in episode.takes]  # take, step
    keys: list[Hashable] = list(dict.fromkeys(key for track in tracks for step in track for key in step))
    masks = torch.zeros(plan.takes, plan.horizon, len(keys), *plan.size, dtype=torch.bool)
    for r, track in enumerate(tracks):
        for t, step in enumerate(track):
            for j, key in enumerate(keys):
                if key in step:
                    masks[r, t, j] = step[key]
    masks = masks if plan.takes > 1 else masks[0]
    return masks, masks.flatten(-2).any(dim=-1)


def episode_fields(episode: Episode, plan: Plan, outcome: Outcome) -> EpisodeFields:
    """One played episode as the probe set stores it, without the leading N (see :class:`ProbeWriter`)."""

    def value(branch: Branch) -> bool | float:
        return branch.success if outcome == "success" else branch.total_return

    several = len(plan.policies) > 1
    per_take = [torch.stack([b.frames for b in take]) for take in episode.takes]
    targets = stack_takes(per_take, "targets", episode.seed)
    dtype = torch.bool if outcome == "success" else torch.float32
    outcomes = torch.tensor([[value(b) for b in take] for take in episode.takes], dtype=dtype)
    outcomes = outcomes if plan.takes > 1 else outcomes[0]
    fields: EpisodeFields = {
        "context": episode.context,
        "actions": torch.stack([b.actions for b in episode.branches]),
        "targets": targets if plan.takes > 1 else targets[0],
        "outcomes": outcomes[..., 0] if several else outcomes,
        "group": episode.group if several else None,
        "seed": episode.seed,
    }
    if plan.mask_extractor is not None:
        fields["masks"], fields["visible"] = _object_masks(episode, plan)
    return fields


class DrawnCheck:
    """Refuses, episode by episode, a probe set whose context and take-0 frames are all one colour: nothing drawn."""

    def __init__(self) -> None:
        self.colour: Tensor | None = None
        self.drawn = False

    def update(self, fields: EpisodeFields) -> None:
        """Look at one episode's context and take-0 frames."""
        if self.drawn:
            return
        targets = fields["targets"] if fields["targets"].ndim == 5 else fields["targets"][0]
        pixels = torch.cat([fields["context"], targets.flatten(0, 1)]).permute(1, 0, 2, 3).flatten(1)
        self.colour = pixels[:, :1] if self.colour is None else self.colour
        self.drawn = bool((pixels != self.colour).any())

    def finish(self) -> None:
        """Raise if no episode drew anything.

        Raises:
            ValueError: If every frame of every episode is one colour.
        """
        if self.drawn or self.colour is None:
            return
        colour = tuple(int(c) for c in self.colour[:, 0])
        raise ValueError(
            f"Expected env.render() to draw the world but every frame of every episode is one colour, "
            f"RGB {colour}: the renderer draws nothing headless (highway-env with SDL_VIDEODRIVER=dummy draws black "
            "frames: make it with config offscreen_rendering=True, or use simgate_tracking.probes.highway)"
        )


def warn_if_no_objects(objects: int, plan: Plan) -> bool:
    """Warn when a mask extractor found no object in any episode; True when masks are kept."""
    if plan.mask_extractor is None:
        return False
    if objects == 0:
        warnings.warn("mask_extractor(env) found no object in any episode: the probe set has no masks", stacklevel=4)
        return False
    return True


def stacked(episodes: Sequence[EpisodeFields], plan: Plan, name: str) -> ProbeSet:
    """The probe set of played episodes held in memory, object slots padded with False to the most any episode has."""
    objects = max((e["masks"].shape[-3] for e in episodes), default=0) if plan.mask_extractor else 0
    keep_masks = warn_if_no_objects(objects, plan)

    def stack(field: str) -> Tensor | None:
        if field in _OBJECT_FIELDS and not keep_masks:
            return None
        values = [e[field] for e in episodes]
        if field in _OBJECT_FIELDS:
            dim = _OBJECT_FIELDS[field]
            values = [_padded(v, dim, objects) for v in values]
        return torch.stack(values)

    several = len(plan.policies) > 1
    return ProbeSet(
        context=torch.stack([e["context"] for e in episodes]),
        actions=torch.stack([e["actions"] for e in episodes]),
        targets=torch.stack([e["targets"] for e in episodes]),
        masks=stack("masks"),
        visible=stack("visible"),
        outcomes=torch.stack([e["outcomes"] for e in episodes]),
        groups=torch.tensor([e["group"] for e in episodes], dtype=torch.long) if several else None,
        seeds=torch.tensor([e["seed"] for e in episodes], dtype=torch.long),
        name=name,
    )


def _padded(value: Tensor, dim: int, size: int) -> Tensor:
    if value.shape[dim] == size:
        return value
    out = torch.zeros(*value.shape[: dim % value.ndim], size, *value.shape[dim % value.ndim + 1 :], dtype=value.dtype)
    out.narrow(dim, 0, value.shape[dim]).copy_(value)
    return out


# ------------------------------------------------------------------ playing seeds, here or in worker processes
_WORKER_ENV: list[Any] = []


def _start_worker(env_fn: Callable[[], Any]) -> None:
    torch.set_num_threads(1)  # the workers share the cores: one thread each
    _WORKER_ENV.append(env_fn())


def _play_in_worker(seed: int, plan: Plan, encoder: ActionEncoder, outcome: Outcome) -> list[EpisodeFields]:
    return [episode_fields(e, plan, outcome) for e in play_episodes(_WORKER_ENV[0], seed, plan, encoder)]


def played(  # noqa: PLR0913
    env: Any,
    env_fn: Callable[[], Any],
    seeds: Sequence[int],
    plan: Plan,
    encoder: ActionEncoder,
    outcome: Outcome,
    workers: int,
) -> Iterator[EpisodeFields]:
    """Every episode of every seed, in seed order; with ``workers > 1`` played in that many worker processes.

    A worker makes its own environment with ``env_fn`` and plays whole seeds, so every episode is played exactly as
    in one process. At most two seeds per worker wait to be taken: memory stays bounded in the number of seeds.
    """
    if workers == 1:
        for seed in seeds:
            yield from (episode_fields(e, plan, outcome) for e in play_episodes(env, seed, plan, encoder))
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs torch threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(env_fn,)) as pool:
        waiting: deque[Future[list[EpisodeFields]]] = deque()
        for seed in seeds:
            waiting.append(pool.submit(_play_in_worker, seed, plan, encoder, outcome))
            if len(waiting) >= 2 * workers:
                yield from waiting.popleft().result()
        while waiting:
            yield from waiting.popleft().result()
