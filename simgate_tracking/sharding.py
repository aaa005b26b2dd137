"""Probe episodes across processes, with every rank's world-model calls in step.

A model with sharded parameters (FSDP, DeepSpeed ZeRO-3) gathers them in every forward pass: each call is a
collective, so every rank must make the same calls with the same batch shapes, or the run hangs or crashes. Shards
are padded to one length (the padding's scores are discarded), and a probe that only rank zero runs, such as the
planning probe, has every other rank repeat its world-model calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from simgate_tracking.world_model import RolloutFn

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """The episodes one rank rolls out: its own, then ``num_padding`` repeats of them whose scores are discarded.

    Attributes:
        indices: (S,) episode indices, the same length S on every rank.
        num_padding: How many of the last ``indices`` are repeats, rolled out only to keep the ranks in step.
    """

    indices: Tensor
    num_padding: int = 0


def padded_shard(num_episodes: int, rank: int, world_size: int) -> Shard:
    """Every ``world_size``-th episode from ``rank``, padded with its own first episodes to the longest shard's length.

    Every rank then makes the same number of world-model calls with the same batch shapes; a rank repeats its own
    episodes, so it reads only its own part of the probe set.

    Example:
        >>> [padded_shard(7, rank, 2) for rank in (0, 1)]  # doctest: +NORMALIZE_WHITESPACE
        [Shard(indices=tensor([0, 2, 4, 6]), num_padding=0), Shard(indices=tensor([1, 3, 5, 1]), num_padding=1)]

    Raises:
        ValueError: If ``rank`` is not in ``[0, world_size)`` or there are fewer episodes than ranks.
    """
    if not isinstance(world_size, int) or world_size < 1 or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"Expected 0 <= rank < world_size but got rank={rank!r}, world_size={world_size!r}")
    if num_episodes < world_size:
        raise ValueError(
            f"Expected at least one probe episode per process but got {num_episodes} episode(s) for {world_size} "
            "processes: add episodes or use fewer devices"
        )
    own = torch.arange(rank, num_episodes, world_size)
    longest = -(-num_episodes // world_size)
    padding = longest - len(own)
    return Shard(torch.cat([own, own[:padding]]), padding)


def process_group() -> tuple[int, int] | None:
    """``(rank, world_size)`` of the initialised default process group when it has several processes, else None."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world_size = dist.get_world_size()
    return (dist.get_rank(), world_size) if world_size > 1 else None


def has_sharded_parameters(module: object) -> bool:
    """Whether ``module`` holds parameters sharded across processes, so that its forward pass is a collective.

    FSDP2 (a module passed to ``fully_shard``), FSDP (``FullyShardedDataParallel``) and DeepSpeed ZeRO-3 (parameters
    with a ``ds_id``). Asked of the modules, not of the parameters' type: FSDP2 swaps its sharded parameters for
    gathered ones between calls.
    """
    if not isinstance(module, nn.Module):
        return False
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    if any(isinstance(m, FSDPModule | FullyShardedDataParallel) for m in module.modules()):
        return True
    return any(hasattr(p, "ds_id") for p in module.parameters())


def in_step_on_rank_zero(
    run: Callable[[RolloutFn], T], rollout_fn: RolloutFn, device: torch.device
) -> tuple[T | None, BaseException | None]:
    """``run(rollout_fn)`` on rank zero while every other rank makes the same world-model calls, in the same order.

    Rank zero sends each call's inputs (on the CPU) before making it; the other ranks make it too and discard its
    frames. ``run``'s result (None on other ranks) and what it raised come back, so the caller decides what a failure
    means; every rank leaves in step whatever happens. Needs an initialised default process group.
    """
    if dist.get_rank() != 0:
        return None, _follow(rollout_fn, device)
    result: T | None = None
    error: BaseException | None = None

    def lead(context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        states = None if generator is None else [(g.device.type, g.get_state()) for g in generator]
        _send((context.detach().cpu(), actions.detach().cpu(), states))
        return rollout_fn(context, actions, generator=generator)

    try:
        result = run(lead)
    except Exception as err:  # reported to the caller; the other ranks must still be told to stop
        error = err
    finally:
        _send(None)
    return result, error


def _send(call: object) -> None:
    dist.broadcast_object_list([call], src=0)


def _follow(rollout_fn: RolloutFn, device: torch.device) -> BaseException | None:
    """Make rank zero's world-model calls until it says stop; the first error is kept and the calls go on."""
    error: BaseException | None = None
    while True:
        received: list[object] = [None]
        dist.broadcast_object_list(received, src=0)
        if received[0] is None:
            return error
        call: tuple[Tensor, Tensor, list[tuple[str, Tensor]] | None] = received[0]  # type: ignore[assignment]
        context, actions, states = call
        generator = None
        if states is not None:  # a CPU generator stays on the CPU; a device one goes to this rank's device
            generator = [torch.Generator(device="cpu" if kind == "cpu" else device).set_state(s) for kind, s in states]
        try:
            with torch.no_grad():
                rollout_fn(context.to(device), actions.to(device), generator=generator)
        except Exception as err:  # rank zero's run decides the outcome; this rank only keeps in step
            error = error or err
