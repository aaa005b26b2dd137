"""The scorecard's per-episode tables: every measured axis's scores or statistics, in episode order.

The first pass visits episodes in probe-set order and the reset pass in another, so each table is sorted by the
episode indices kept at update time; under DDP the indices and the rows are gathered together, so a table equals
the single-process one. Task validity may judge several rows per episode (one per branch): its rows are summed per
episode, the unit a bootstrap resamples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from simgate_tracking.functional._checks import NothingToScoreError
from simgate_tracking.metrics._composite import compute_child

if TYPE_CHECKING:
    from simgate_tracking.metrics.scorecard import SimulatorScorecard
    from simgate_tracking.metrics.task_validity import TaskValidity


def episode_score_table(card: SimulatorScorecard) -> dict[str, Tensor]:
    """``episode_index`` sorted, and every measured frame axis's per-episode scores in that order.

    Raises:
        RuntimeError: If the scorecard was built without ``episode_scores=True``.
    """
    if not card.keeps_episode_scores:
        raise RuntimeError("Build SimulatorScorecard(episode_scores=True) to keep per-episode scores")
    with card.sync_context(card.dist_sync_fn, should_sync=card.sync_on_compute, should_unsync=card.sync_on_compute):
        index, reset_index = _as_tensor(card.episode_index), _as_tensor(card.reset_index)
        order = index.argsort()
        table = {"episode_index": index[order]}
        for name, metric in card.frame_axes().items():
            if not card.was_measured(name):
                continue
            scores = metric.episode_scores()
            # pass 2 visits episodes in another order: line its scores up by episode index
            table[name] = scores[reset_index.argsort()] if name == "reset_reproducibility" else scores[order]
    return table


def episode_statistics_table(card: SimulatorScorecard) -> dict[str, Tensor]:
    """Every measured frame axis's per-episode statistics, sorted by ``episode_index``.

    Raises:
        RuntimeError: If the scorecard was built without ``episode_scores=True``.
    """
    if not card.keeps_episode_scores:
        raise RuntimeError("Build SimulatorScorecard(episode_scores=True) to keep per-episode statistics")
    with card.sync_context(card.dist_sync_fn, should_sync=card.sync_on_compute, should_unsync=card.sync_on_compute):
        order, reset_order = _as_tensor(card.episode_index).argsort(), _as_tensor(card.reset_index).argsort()
        table = {
            name: metric.episode_statistics()[reset_order if name == "reset_reproducibility" else order]
            for name, metric in card.frame_axes().items()
            if card.was_measured(name)
        }
        if card.was_measured("task_validity") and _scored(card.task_validity):
            table["task_validity"] = _per_episode(_as_tensor(card.task_index), card.task_validity.episode_statistics())
    return table


def task_rows_index(episode_index: Tensor, task_real: Tensor) -> Tensor:
    """The episode of each judged task row: one row per episode, or per (episode, branch), episode-major.

    Raises:
        ValueError: If the task rows are not a whole number per episode.
    """
    rows, episodes = task_real.shape[0], episode_index.shape[0]
    if episodes == 0 or rows % episodes:
        raise ValueError(
            f"Expected `task_real` to hold one row per episode, or per (episode, branch), for the {episodes} "
            f"episode(s) of `preds` but got {rows} row(s)"
        )
    return episode_index.repeat_interleave(rows // episodes)


def _per_episode(index: Tensor, rows: Tensor) -> Tensor:
    """Rows (L, k) summed per episode index, in episode order; on the CPU, in row order, so the sums repeat."""
    episodes, which = index.cpu().unique(sorted=True, return_inverse=True)
    rows = rows.detach().cpu()
    return torch.zeros(len(episodes), rows.shape[1], dtype=rows.dtype).index_add_(0, which, rows)


def _scored(task: TaskValidity) -> bool:
    """Whether the scorecard scores task validity (a ranking needs two policies): only a score has an interval."""
    try:
        compute_child(task)
    except NothingToScoreError:
        return False
    return True


def _as_tensor(kept: Any) -> Tensor:
    if isinstance(kept, Tensor):
        return kept
    return torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long)
