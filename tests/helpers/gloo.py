"""A real process group for tests: a function run on every rank of ``world_size`` CPU processes (gloo).

Every collective has a deadline and so has the whole run: a rank that waits on a peer fails the test, never hangs it.
"""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    rank: int, fn: Callable[..., Any], args: tuple, port: int, outputs: dict, world_size: int, collective_s: float
) -> None:
    timeout = datetime.timedelta(seconds=collective_s)
    dist.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size, timeout=timeout)
    try:
        torch.set_num_threads(1)
        outputs[rank] = fn(rank, *args)
    finally:
        dist.destroy_process_group()


def run_on_ranks(
    fn: Callable[..., Any], *args: Any, world_size: int = 2, deadline_s: float = 120, collective_s: float = 60
) -> dict[int, Any]:
    """``fn(rank, *args)`` on every rank of a fresh gloo process group of ``world_size`` CPU processes.

    ``fn`` must be a module-level function (the spawned processes import it by name) and return something picklable.
    Returns {rank: what ``fn`` returned}. A rank that raises fails the run; so does a run past ``deadline_s`` (its
    processes are killed) and a collective that waits longer than ``collective_s``.
    """
    with mp.Manager() as manager:
        outputs = manager.dict()
        context = mp.start_processes(
            _worker,
            args=(fn, args, _free_port(), outputs, world_size, collective_s),
            nprocs=world_size,
            join=False,
            start_method="spawn",
        )
        deadline = time.monotonic() + deadline_s
        try:
            # join returns when any process ends, and raises if one failed; True once all are done
            while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
                if time.monotonic() > deadline:
                    pytest.fail(f"the {world_size}-process run took over {deadline_s} s: a collective is waiting")
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
        return dict(outputs)
