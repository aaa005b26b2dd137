"""Every axis at once, updated from one rollout bundle."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simgate_tracking.functional.task_validity import TaskMode
from simgate_tracking.metrics._base import count_update
from simgate_tracking.metrics._composite import CHILD_OPTIONS, compute_child
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric
from simgate_tracking.metrics._episode_tables import task_rows_index
from simgate_tracking.metrics._fused_update import split_branches, update_frame_axes, update_reset_axis
from simgate_tracking.metrics._scorecard_results import ScorecardResults, measure
from simgate_tracking.metrics.controllability import Controllability
from simgate_tracking.metrics.delta_psnr import DeltaPSNR
from simgate_tracking.metrics.object_persistence import ObjectPersistence
from simgate_tracking.metrics.reset_reproducibility import ResetReproducibility
from simgate_tracking.metrics.task_validity import TaskValidity
from simgate_tracking.metrics.temporal_consistency import TemporalConsistency
from simgate_tracking.metrics.visual_fidelity import VisualFidelity

GATED = ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility", "task_validity")


class SimulatorScorecard(ScorecardResults):
    """The five simulator axes plus frame quality and delta-PSNR, from one bundle of rollouts.

    ``update(preds, target, second=None, masks=None, visible=None, task_pred=None, task_real=None, groups=None,
    episode_index=None)``:

    - ``preds``, ``target``: (B, K+1, T, C, H, W), branch 0 the reference actions: controllability, delta-PSNR and
      frame quality on every branch; temporal consistency on the reference branch. ``preds`` may also be the pair
      ``(reference, counterfactual)``, (B, T, C, H, W) and (B, K, T, C, H, W), as a world model returns them: the
      branches are then stacked a few episodes at a time, and the batch is never held twice.
    - ``second``: (B, T, C, H, W), a second rollout of the reference branch from the same reset and seed:
      reset reproducibility.
    - ``masks``, ``visible``: (B, T, N, H, W) and (B, T, N) bool for the reference branch: object persistence.
    - ``task_pred``, ``task_real`` (and ``groups`` in ranking mode): (B,) outcomes, or (B, K+1) per-branch task
      values in decision mode: task validity.
    - ``episode_index``: (B,) int, the episodes' indices in the probe set, kept for per-episode reports.

    With R real takes of every episode (a stochastic world), ``target`` is (B, R, K+1, T, C, H, W), ``masks`` and
    ``visible`` (B, R, T, N, H, W) and (B, R, T, N), ``task_real`` (B, R): every axis scores the model against
    reality's takes relative to reality's own spread, and :meth:`real_baseline` gives reality's own score per axis.
    Frame quality and delta-PSNR compare with take 0.

    An axis whose inputs never came is left out of :meth:`compute`, so the gate judges only what was measured.

    The scorecard is one torchmetrics ``Metric`` over all its axes: ``forward`` adds a bundle and returns that
    bundle's own scores; ``merge_state``, ``persistent``, ``state_dict``/``load_state_dict``, ``reset``, ``clone``,
    pickle, ``set_dtype`` and the sync across processes cover every axis (the axes are synced by the scorecard, never
    on their own: read their scores through it). :meth:`plot` draws the scorecard picture.

    Args:
        task_mode: ``"agreement"``, ``"ranking"`` or ``"decision"`` for task validity.
        num_groups: Ranking mode: the number of policy ids.
        episode_scores: Keep per-episode scores for :meth:`episode_scores`.
        num_takes: R, the real takes of every episode in ``target`` (1: no takes dimension).
        cpu_kernel: On CPU, take every frame axis's sums in one pass of a compiled kernel (numba), the same sums
            the tensor path takes in several, for updates of at least 2**22 frame values (smaller ones would not
            repay the kernel's one-time load). False, or numba missing: the tensor path everywhere.
        kwargs: Options of :class:`torchmetrics.Metric`, passed to every axis.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import SimulatorScorecard
        >>> real = torch.rand(2, 3, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> card = SimulatorScorecard()
        >>> frozen = real[:, :, :1].expand_as(real)  # a model whose rollouts never move
        >>> card.update(frozen, real, second=frozen[:, 0])
        >>> for name, value in card.compute().items():
        ...     print(f"{name}: {float(value):.2f}")
        controllability: 0.26
        temporal_consistency: 0.00
        reset_reproducibility: 1.00
        psnr: 9.09
        ssim: 0.27
        delta_psnr: 1.35
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    axis_updates: Tensor
    episode_index: Any
    reset_index: Any
    task_index: Any

    def __init__(
        self,
        task_mode: TaskMode = "agreement",
        num_groups: int = 64,
        episode_scores: bool = False,
        cpu_kernel: bool = True,
        num_takes: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(cpu_kernel, bool):
            raise ValueError(f"Expected argument `cpu_kernel` to be a bool but got {cpu_kernel!r}")
        self.init_args = dict(
            task_mode=task_mode,
            num_groups=num_groups,
            episode_scores=episode_scores,
            cpu_kernel=cpu_kernel,
            num_takes=num_takes,
            **kwargs,
        )
        self.cpu_kernel = cpu_kernel
        # the scorecard brings frames to [0, 1] once, before its axes see them
        options = {**{k: v for k, v in kwargs.items() if k != "value_range"}, **CHILD_OPTIONS}
        self.controllability = Controllability(episode_scores=episode_scores, num_takes=num_takes, **options)
        self.temporal_consistency = TemporalConsistency(episode_scores=episode_scores, num_takes=num_takes, **options)
        self.object_persistence = ObjectPersistence(episode_scores=episode_scores, num_takes=num_takes, **options)
        self.reset_reproducibility = ResetReproducibility(episode_scores=episode_scores, **options)
        self.task_validity = TaskValidity(
            mode=task_mode, num_groups=num_groups, num_takes=num_takes, episode_scores=episode_scores, **options
        )
        self.visual_fidelity = VisualFidelity(**options)
        self.delta_psnr = DeltaPSNR(**options)
        self.keeps_episode_scores = episode_scores
        for axis in (*self.frame_axes().values(), self.task_validity):
            axis.warn_nonfinite = False  # compute() warns once for every axis together
        # updates that reached each gated axis: a state, so what was measured survives merge_state, load_state_dict
        # and the sync across processes (an axis's own update count does not)
        self.add_state("axis_updates", torch.zeros(len(GATED), dtype=torch.long), dist_reduce_fx="sum")
        if episode_scores:
            self.add_state("episode_index", [], dist_reduce_fx="cat")
            self.add_state("reset_index", [], dist_reduce_fx="cat")
            self.add_state("task_index", [], dist_reduce_fx="cat")  # the episode of each task row

    def frame_axes(self) -> dict[str, EpisodeMeanMetric]:
        """The gated axes scored from frames, by name."""
        return {
            "controllability": self.controllability,
            "temporal_consistency": self.temporal_consistency,
            "object_persistence": self.object_persistence,
            "reset_reproducibility": self.reset_reproducibility,
        }

    def update(
        self,
        preds: Tensor | tuple[Tensor, Tensor],
        target: Tensor,
        second: Tensor | None = None,
        masks: Tensor | None = None,
        visible: Tensor | None = None,
        task_pred: Tensor | None = None,
        task_real: Tensor | None = None,
        groups: Tensor | None = None,
        episode_index: Tensor | None = None,
    ) -> None:
        """Add one bundle of rollouts; see the class docstring for shapes."""
        if (task_pred is None) != (task_real is None):
            raise ValueError("Expected `task_pred` and `task_real` together but got only one of them")
        preds, target, second = self.in_unit_range(preds, target, second)
        reference = split_branches(preds)[0]
        update_frame_axes(self, preds, target, second, masks, visible, self.cpu_kernel)
        index = torch.arange(len(reference), device=reference.device) if episode_index is None else episode_index
        if second is not None and self.keeps_episode_scores:
            self.reset_index.append(index.to(reference.device))
        if task_pred is not None and task_real is not None:
            self.task_validity.update(task_pred, task_real, groups)
            if self.keeps_episode_scores:
                self.task_index.append(task_rows_index(index.to(reference.device), task_real))
        if self.keeps_episode_scores:
            self.episode_index.append(index.to(reference.device))
        self._measured("controllability", "temporal_consistency")
        self._measured(*(["object_persistence"] if masks is not None else []))
        self._measured(*(["reset_reproducibility"] if second is not None else []))
        self._measured(*(["task_validity"] if task_pred is not None else []))

    def _measured(self, *axes: str) -> None:
        """Count an update of ``axes``; indexing a device tensor with host ints does not synchronise the device."""
        for axis in axes:
            self.axis_updates[GATED.index(axis)] += 1

    def was_measured(self, axis: str) -> bool:
        """Whether any update (here or in a merged or synced scorecard) reached the gated ``axis``."""
        return bool(self.axis_updates[GATED.index(axis)] > 0)

    def update_reset(self, first: Tensor, second: Tensor, target: Tensor, episode_index: Tensor | None = None) -> None:
        """Add reset reproducibility alone, for a second pass that visits episodes in another order than the first.

        Args:
            first: First-pass reference rollouts, (B, T, C, H, W).
            second: Second-pass rollouts of the same episodes, same shape.
            target: Real reference futures, same shape.
            episode_index: (B,) the episodes' indices, so per-episode scores line up with :meth:`update`'s.
        """
        first, second, target = self.in_unit_range(first, second, target)
        update_reset_axis(self.reset_reproducibility, first, second, target, self.cpu_kernel)
        if self.keeps_episode_scores:
            index = torch.arange(first.shape[0], device=first.device) if episode_index is None else episode_index
            self.reset_index.append(index.to(first.device))
        self._measured("reset_reproducibility")
        count_update(self)  # an update made outside `update`: it counts, and a cached compute() is stale

    def compute(self) -> dict[str, Tensor]:
        """Scores of every measured axis, then ``psnr``, ``ssim`` and ``delta_psnr``.

        An axis that had nothing to score (masks without a visible object, a single policy to rank) is left out
        with a warning, so the gate judges only what was measured.

        Raises:
            RuntimeError: If ``compute()`` is called before any ``update()``.
        """
        if not self.was_measured("controllability"):
            raise RuntimeError("SimulatorScorecard.compute() was called before any update()")
        scores: dict[str, Tensor] = {}
        for name, metric in {**self.frame_axes(), "task_validity": self.task_validity}.items():
            if self.was_measured(name):
                measure(scores, name, metric)
        if "task_validity" in scores and self.task_validity.mode == "decision":
            scores["decision_no_regret"] = self.task_validity.no_regret()
        self._warn_nonfinite(scores)
        scores.update(compute_child(self.visual_fidelity))
        scores["delta_psnr"] = compute_child(self.delta_psnr)
        return scores
