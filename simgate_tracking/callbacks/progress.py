"""A progress bar for the gate's rollouts that fits the Trainer's own bar (tqdm or rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

DESCRIPTION = "Simulator gate"


@contextmanager
def gate_progress(trainer: pl.Trainer, total: int) -> Iterator[Callable[[int, int], None] | None]:
    """Yield ``progress(done, total)`` that drives a bar in the Trainer's progress display, or None without one.

    With tqdm the validation bar (still open at the end of validation) is reused for the gate's world-model
    batches; with rich a task is added under the validation bar and removed afterwards.
    """
    bar = trainer.progress_bar_callback
    if isinstance(bar, TQDMProgressBar) and not bar.is_disabled and bar._val_progress_bar is not None:
        tqdm = bar.val_progress_bar
        tqdm.reset(total=total)
        tqdm.set_description(DESCRIPTION)
        yield _tqdm_update(tqdm)
    elif isinstance(bar, RichProgressBar) and bar.is_enabled and bar.progress is not None:
        task = bar.progress.add_task(f"[blue]{DESCRIPTION}", total=total)
        try:
            yield lambda done, _total: bar.progress.update(task, completed=done) if bar.progress else None
        finally:
            bar.progress.remove_task(task)
    else:
        yield None


def _tqdm_update(tqdm: Any) -> Callable[[int, int], None]:
    def update(done: int, _total: int) -> None:
        tqdm.n = done
        tqdm.refresh()

    return update
