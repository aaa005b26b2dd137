"""Every axis at once, updated from one rollout bundle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from simgate_tracking.functional._checks import NothingToScoreError, as_frames, compute_dtype
from simgate_tracking.functional._distances import sharing_branch_distances
from simgate_tracking.functional._fused import RolloutSums, kernel_takes, rollout_sums
from simgate_tracking.functional.controllability import _controllability_from_distances, _delta_psnr_from_distances
from simgate_tracking.functional.object_persistence import _persistence_from_sums
from simgate_tracking.functional.reset_reproducibility import _reset_from_energies
from simgate_tracking.functional.task_validity import TaskMode
from simgate_tracking.functional.temporal_consistency import _temporal_from_energies
from simgate_tracking.gate import DEFAULT_THRESHOLD
from simgate_tracking.metrics._base import PlotValue, count_update
from simgate_tracking.metrics._composite import CHILD_OPTIONS, CompositeMetric, compute_child
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric
from simgate_tracking.metrics._plot import plot_scorecard
from simgate_tracking.metrics._rank_zero import rank_zero_warn
from simgate_tracking.metrics.controllability import Controllability
from simgate_tracking.metrics.delta_psnr import DeltaPSNR
from simgate_tracking.metrics.object_persistence import ObjectPersistence
from simgate_tracking.metrics.reset_reproducibility import ResetReproducibility
from simgate_tracking.metrics.task_validity import TaskValidity
from simgate_tracking.metrics.temporal_consistency import TemporalConsistency
from simgate_tracking.metrics.visual_fidelity import VisualFidelity

CPU_CHUNKS, CPU_CHUNK_BYTES = 4, (4 * 2**20, 16 * 2**20)  # chunks of the episodes scored at once on CPU; see below
GATED = ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility", "task_validity")


class SimulatorScorecard(CompositeMetric):
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
        options = {**kwargs, **CHILD_OPTIONS}
        self.controllability = Controllability(episode_scores=episode_scores, num_takes=num_takes, **options)
        self.temporal_consistency = TemporalConsistency(episode_scores=episode_scores, num_takes=num_takes, **options)
        self.object_persistence = ObjectPersistence(episode_scores=episode_scores, num_takes=num_takes, **options)
        self.reset_reproducibility = ResetReproducibility(episode_scores=episode_scores, **options)
        self.task_validity = TaskValidity(mode=task_mode, num_groups=num_groups, num_takes=num_takes, **options)
        self.visual_fidelity = VisualFidelity(**options)
        self.delta_psnr = DeltaPSNR(**options)
        self.keeps_episode_scores = episode_scores
        for axis in (*self._frame_axes().values(), self.task_validity):
            axis.warn_nonfinite = False  # compute() warns once for every axis together
        # updates that reached each gated axis: a state, so what was measured survives merge_state, load_state_dict
        # and the sync across processes (an axis's own update count does not)
        self.add_state("axis_updates", torch.zeros(len(GATED), dtype=torch.long), dist_reduce_fx="sum")
        if episode_scores:
            self.add_state("episode_index", [], dist_reduce_fx="cat")
            self.add_state("reset_index", [], dist_reduce_fx="cat")

    def _frame_axes(self) -> dict[str, EpisodeMeanMetric]:
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
        reference, branches = _branches(preds)
        compiled = self.cpu_kernel and _kernel_applies(preds, target, second, masks, visible)
        scored = compiled and self._update_compiled(preds, target, second, masks, visible)
        # a `second` of another length is passed whole, so the reset axis reports the mismatch
        for part in _episode_chunks(target, reference, masks, visible, second):
            p, y = _float_frames(branches(part), "preds"), _float_frames(target[part], "target")
            if not scored:
                again = None if second is None else _float_frames(second[part], "second")
                chunk_masks = None if masks is None else masks[part]
                chunk_visible = None if visible is None else visible[part]
                reference_frames = _float_frames(reference[part], "preds")
                self._update_tensors(p, y, reference_frames, again, chunk_masks, chunk_visible)
            self.visual_fidelity.update(p, _first_take(y))
        index = torch.arange(len(reference), device=reference.device) if episode_index is None else episode_index
        if second is not None and self.keeps_episode_scores:
            self.reset_index.append(index.to(reference.device))
        if task_pred is not None and task_real is not None:
            self.task_validity.update(task_pred, task_real, groups)
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

    def _was_measured(self, axis: str) -> bool:
        return bool(self.axis_updates[GATED.index(axis)] > 0)

    def update_reset(self, first: Tensor, second: Tensor, target: Tensor, episode_index: Tensor | None = None) -> None:
        """Add reset reproducibility alone, for a second pass that visits episodes in another order than the first.

        Args:
            first: First-pass reference rollouts, (B, T, C, H, W).
            second: Second-pass rollouts of the same episodes, same shape.
            target: Real reference futures, same shape.
            episode_index: (B,) the episodes' indices, so per-episode scores line up with :meth:`update`'s.
        """
        compiled = (
            self.cpu_kernel
            and all(isinstance(x, Tensor) for x in (first, second, target))
            and kernel_takes(first, second, target)
            and first.ndim == 5
            and first.numel() > 0
            and first.shape == second.shape == target.shape
        )
        parts = _episode_chunks(first, second, target)
        if compiled and first.dtype == second.dtype == target.dtype == torch.float32:
            parts = [slice(None)]  # float32 frames go to the kernel whole
        for part in parts:
            sums = None
            if compiled:
                p1, p2 = _float_frames(first[part], "first"), _float_frames(second[part], "second")
                sums = rollout_sums(p1, _float_frames(target[part], "target"), second=p2, temporal=False)
            if sums is not None and sums.reset is not None:
                self.reset_reproducibility.add_scores(*_reset_from_energies(*sums.reset.unbind(1)))
            else:
                self.reset_reproducibility.update(first[part], second[part], target[part])
        if self.keeps_episode_scores:
            index = torch.arange(first.shape[0], device=first.device) if episode_index is None else episode_index
            self.reset_index.append(index.to(first.device))
        self._measured("reset_reproducibility")
        count_update(self)  # an update made outside `update`: it counts, and a cached compute() is stale

    def _update_compiled(
        self,
        preds: Tensor | tuple[Tensor, Tensor],
        target: Tensor,
        second: Tensor | None,
        masks: Tensor | None,
        visible: Tensor | None,
    ) -> bool:
        """Every frame axis from the compiled kernel; False, with nothing added, where the kernel is unavailable.

        float32 frames go to the kernel whole, the branches apart if they came apart; other frame dtypes are
        converted a few episodes at a time.
        """
        tensors = (*preds, target, second) if isinstance(preds, tuple) else (preds, target, second)
        reference = preds[0] if isinstance(preds, tuple) else preds[:, 0]
        whole = all(x is None or x.dtype == torch.float32 for x in tensors)
        parts = [slice(None)] if whole else _episode_chunks(target, reference, masks, visible, second)
        found = []
        for part in parts:
            model: Tensor | tuple[Tensor, Tensor]
            if isinstance(preds, tuple):
                model = (_float_frames(preds[0][part], "preds"), _float_frames(preds[1][part], "preds"))
            else:
                model = _float_frames(preds[part], "preds")
            sums = rollout_sums(
                model,
                _float_frames(target[part], "target"),
                second=None if second is None else _float_frames(second[part], "second"),
                masks=None if masks is None else masks[part],
                ring_width=self.object_persistence.ring_width,
            )
            if sums is None:
                return False
            found.append((sums, None if visible is None else visible[part]))
        for sums, chunk_visible in found:
            self._add_sums(sums, chunk_visible, reference[0].numel())
        return True

    def _add_sums(self, sums: RolloutSums, visible: Tensor | None, values_per_branch: int) -> None:
        """Every frame axis's per-episode scores, finished from the kernel's sums as their tensor paths finish them."""
        assert sums.distances is not None and sums.temporal is not None
        self.controllability.add_scores(*_controllability_from_distances(sums.distances))
        self.delta_psnr.add_deltas(_delta_psnr_from_distances(sums.distances, values_per_branch))
        self.temporal_consistency.add_scores(*_temporal_from_energies(*sums.temporal.unbind(1)))
        if sums.inside is not None and sums.around is not None:
            scores, finite, has_objects = _persistence_from_sums(sums.inside, sums.around, sums.finite, visible)
            self.object_persistence.add_scores(scores, finite, counted=has_objects)
        if sums.reset is not None:
            self.reset_reproducibility.add_scores(*_reset_from_energies(*sums.reset.unbind(1)))

    def _update_tensors(  # noqa: PLR0913
        self,
        p: Tensor,
        y: Tensor,
        reference: Tensor,
        second: Tensor | None,
        masks: Tensor | None,
        visible: Tensor | None,
    ) -> None:
        """One chunk through every axis's own update: tensor operations, on any device and dtype."""
        with sharing_branch_distances():
            self.controllability.update(p, y)
            self.delta_psnr.update(p, _first_take(y))
        # the axes below read the reference branch alone (of every take)
        real_reference = y[:, :, 0] if y.ndim == 7 else y[:, 0]
        self.temporal_consistency.update(reference, real_reference)
        if masks is not None:
            self.object_persistence.update(reference, real_reference, masks, visible)
        if second is not None:
            self.reset_reproducibility.update(reference, second, real_reference)

    def compute(self) -> dict[str, Tensor]:
        """Scores of every measured axis, then ``psnr``, ``ssim`` and ``delta_psnr``.

        An axis that had nothing to score (masks without a visible object, a single policy to rank) is left out
        with a warning, so the gate judges only what was measured.

        Raises:
            RuntimeError: If ``compute()`` is called before any ``update()``.
        """
        if not self._was_measured("controllability"):
            raise RuntimeError("SimulatorScorecard.compute() was called before any update()")
        scores: dict[str, Tensor] = {}
        for name, metric in {**self._frame_axes(), "task_validity": self.task_validity}.items():
            if self._was_measured(name):
                _measure(scores, name, metric)
        if "task_validity" in scores and self.task_validity.mode == "decision":
            scores["decision_no_regret"] = self.task_validity.no_regret()
        self._warn_nonfinite(scores)
        scores.update(compute_child(self.visual_fidelity))
        scores["delta_psnr"] = compute_child(self.delta_psnr)
        return scores

    def real_baseline(self) -> dict[str, Tensor]:
        """Reality's own score on every measured simulator axis, each real take held out (1 with one take).

        Each take is scored against the other takes as the model is; with one take per episode reality is its own
        reference and scores 1 on every axis.
        """
        axes: dict[str, EpisodeMeanMetric | TaskValidity] = {**self._frame_axes(), "task_validity": self.task_validity}
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            measured = [name for name, axis in axes.items() if self._was_measured(name) and int(axis.total)]
            return {name: axes[name].real_baseline() for name in measured}

    def _warn_nonfinite(self, scores: dict[str, Tensor]) -> None:
        """One warning for every axis that scored NaN or Inf model output as 0 (counts synced by the axes)."""
        axes = {**self._frame_axes(), "task_validity": self.task_validity}
        hit = {name: axes[name].nonfinite_seen for name in axes if name in scores and axes[name].nonfinite_seen}
        if hit:
            counts = ", ".join(f"{name} ({count})" for name, count in hit.items())
            rank_zero_warn(
                "The world model produced NaN or Inf output; those episodes score 0 (task outcomes count as wrong) "
                f"on: {counts}. Check its rollouts."
            )

    def episode_scores(self) -> dict[str, Tensor]:
        """Per-episode scores of every measured frame axis, sorted by ``episode_index`` (NaN: nothing to score).

        Raises:
            RuntimeError: If the scorecard was built without ``episode_scores=True``.
        """
        if not self.keeps_episode_scores:
            raise RuntimeError("Build SimulatorScorecard(episode_scores=True) to keep per-episode scores")
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            index, reset_index = _as_tensor(self.episode_index), _as_tensor(self.reset_index)
            order = index.argsort()
            table = {"episode_index": index[order]}
            for name, metric in self._frame_axes().items():
                if not self._was_measured(name):
                    continue
                scores = metric.episode_scores()
                # pass 2 visits episodes in another order: line its scores up by episode index
                table[name] = scores[reset_index.argsort()] if name == "reset_reproducibility" else scores[order]
        return table

    def plot(
        self,
        val: PlotValue = None,
        ax: Any = None,
        threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
    ) -> tuple[Any, Any]:
        """Plot the scorecard picture of one value, or every gated axis over a sequence of values.

        One value (the dict :meth:`compute` or ``forward`` returns; default :meth:`compute`) is drawn as the
        dashboards draw a check: a bar per gated axis against its threshold, the weakest axis outlined, the verdict
        in the title, frame quality and decision scores beside it. A sequence of values (one per check) is drawn as
        a line per gated axis over the checks, on 0..1, with the thresholds dashed.

        Args:
            val: One value or a sequence of values; default :meth:`compute`.
            ax: A matplotlib ``Axes`` to draw the bars or the lines in; default a new figure.
            threshold: The gate's threshold, one for every axis or per axis, as
                :class:`~simgate_tracking.SimulatorGate` takes it.

        Returns:
            The figure and the ``Axes`` drawn in.

        Raises:
            ModuleNotFoundError: If matplotlib is not installed (the ``media`` extra).

        Example:
            >>> import torch
            >>> real = torch.rand(2, 3, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
            >>> card = SimulatorScorecard()
            >>> frozen = real[:, :, :1].expand_as(real)  # a model whose rollouts never move
            >>> card.update(frozen, real, second=frozen[:, 0])
            >>> fig, ax = card.plot()
            >>> ax.get_title(loc="left")
            'FAIL, weakest temporal_consistency 0.000 (threshold 0.65)'
            >>> [label.get_text() for label in ax.get_yticklabels()]
            ['controllability', 'temporal_consistency', 'reset_reproducibility']
        """
        if val is None:
            return plot_scorecard(self.compute(), ax, threshold, real_baseline=self.real_baseline())
        return plot_scorecard(val, ax, threshold)


def _branches(preds: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Callable[[slice], Tensor]]:
    """The reference rollouts, and the (b, K+1, T, C, H, W) rollouts of a slice of episodes, from either form."""
    if not isinstance(preds, tuple):
        # a wrong `preds` is reported by the first axis that reads it, as for any other bad input
        return (preds[:, 0] if isinstance(preds, Tensor) and preds.ndim >= 2 else preds), lambda part: preds[part]
    if len(preds) != 2 or not all(isinstance(x, Tensor) for x in preds):
        raise ValueError("Expected `preds` as a tensor or a pair of tensors (reference, counterfactual)")
    reference, counterfactual = preds
    if reference.ndim != 5 or counterfactual.ndim != 6 or counterfactual[:, 0].shape != reference.shape:
        raise ValueError(
            "Expected `preds` as (reference (B, T, C, H, W), counterfactual (B, K, T, C, H, W)) but got shapes "
            f"{tuple(reference.shape)} and {tuple(counterfactual.shape)}"
        )
    return reference, lambda part: torch.cat([reference[part].unsqueeze(1), counterfactual[part]], dim=1)


def _first_take(target: Tensor) -> Tensor:
    """Take 0 of (B, R, K+1, T, C, H, W) real takes; one take passes unchanged. Frame quality compares with it."""
    return target[:, 0] if target.ndim == 7 else target


def _kernel_applies(
    preds: Tensor | tuple[Tensor, Tensor],
    target: Tensor,
    second: Tensor | None,
    masks: Tensor | None,
    visible: Tensor | None,
) -> bool:
    """True where the compiled kernel can score the bundle: CPU frames whose shapes agree.

    Anything else takes the tensor path, whose checks report what was expected and what was given.
    """
    if isinstance(preds, tuple):
        # `_branches` checked that the counterfactual branches match the reference
        reference, counterfactual = preds
        if not kernel_takes(reference, counterfactual, target, second):
            return False
        shape = (counterfactual.shape[0], counterfactual.shape[1] + 1, *counterfactual.shape[2:])
    else:
        if not kernel_takes(preds, target, second):
            return False
        shape = tuple(preds.shape)
    if len(shape) != 6 or shape != tuple(target.shape) or min(shape) < 1 or shape[1] < 2 or shape[2] < 2:
        return False
    frames = (shape[0], *shape[2:])
    if second is not None and tuple(second.shape) != frames:
        return False
    if masks is None:
        return True
    if not isinstance(masks, Tensor) or masks.dtype != torch.bool or masks.ndim != 5 or masks.device.type != "cpu":
        return False
    if tuple(masks.shape[:2]) != shape[:1] + shape[2:3] or tuple(masks.shape[3:]) != shape[4:]:
        return False
    if visible is None:
        return True
    return isinstance(visible, Tensor) and visible.dtype == torch.bool and visible.shape == masks.shape[:3]


def _float_frames(frames: Tensor, name: str) -> Tensor:
    """uint8 or half-precision frames as float32, converted once for every axis (each would convert them itself)."""
    if isinstance(frames, Tensor) and frames.dtype in (torch.uint8, torch.float16, torch.bfloat16):
        return compute_dtype(as_frames(frames, name))
    return frames


def _episode_chunks(*inputs: Tensor | None) -> list[slice]:
    """Slices of the episode dimension to score one after the other: a few episodes at a time on CPU, all elsewhere.

    On CPU, a temporary larger than the C allocator's mmap threshold (at most 32 MiB) is fresh, page-faulted memory
    at every call, and costs more than the arithmetic on it; chunks keep every temporary small and in cache. Inputs
    that disagree on the number of episodes are passed whole, so the axis that reads them reports the mismatch.
    """
    frames, given = inputs[0], [x for x in inputs if x is not None]
    if not isinstance(frames, Tensor) or frames.device.type != "cpu" or frames.ndim == 0 or len(frames) == 0:
        return [slice(None)]
    if any(not isinstance(x, Tensor) or x.ndim == 0 or len(x) != len(frames) for x in given):
        return [slice(None)]
    # a quarter of the bundle, within bounds: few chunks (every chunk costs every axis its fixed overhead) whose
    # temporaries stay a fraction of the rollouts the caller already holds
    chunk_bytes = min(max(frames.numel() * 4 // CPU_CHUNKS, CPU_CHUNK_BYTES[0]), CPU_CHUNK_BYTES[1])
    step = max(1, chunk_bytes // (frames[0].numel() * 4))
    return [slice(start, start + step) for start in range(0, len(frames), step)]


def _measure(scores: dict[str, Tensor], name: str, metric: Metric) -> None:
    """Add ``name``'s score; an axis with nothing to score (no visible object, one policy) is left out, warned."""
    try:
        scores[name] = compute_child(metric)
    except NothingToScoreError as err:
        rank_zero_warn(f"{name} is left out of the scorecard, it had nothing to score: {err}")


def _as_tensor(kept: Any) -> Tensor:
    if isinstance(kept, Tensor):
        return kept
    return torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long)
