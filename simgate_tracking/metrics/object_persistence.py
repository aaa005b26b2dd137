"""Object persistence as a streaming metric."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from simgate_tracking._utils import check_positive_int
from simgate_tracking.functional.object_persistence import _object_persistence_update
from simgate_tracking.functional.object_persistence_takes import _object_persistence_takes_update
from simgate_tracking.functional.takes import has_takes, one_take
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric


class ObjectPersistence(EpisodeMeanMetric):
    r"""Does every object that reality shows stay present, in place, with its own identity?

    For object :math:`n` visible at step :math:`t`, presence
    :math:`p = 1 - (|M| / \max_s |M_s|) \, \|(P - Y) M\|^2 / \|(Y - B) M\|^2`, clamped, with :math:`M` the
    object's mask, :math:`\max_s |M_s|` its largest visible area and :math:`B` the mean real colour of a thin ring
    around it. A track
    scores its worst visible step, an episode its weakest track; the mean over episodes that show an object.
    See :func:`simgate_tracking.functional.object_persistence`.

    ``update(preds, target, masks, visible=None)`` takes reference-branch rollouts and real futures
    (B, T, C, H, W), masks (B, T, N, H, W) bool and visibility (B, T, N) bool (absent slots all False).

    With real takes on CPU, what the takes alone decide (reality's own score, where to search) is computed at an
    episode's first update and kept in the process for later ones, keyed by a digest of the takes, masks and
    visibility: a gate that scores a fixed probe set at every check pays for it once (up to 16384 episodes, and
    256 MiB of the takes' windows and spectra; see :mod:`simgate_tracking.functional.object_persistence_takes`).

    Args:
        ring_width: Width in pixels of the ring around each mask that estimates the background.
        max_shift: With real takes: the largest shift, in pixels, searched for an object that reality itself
            scatters (see :mod:`simgate_tracking.functional.object_persistence_takes`); default half the frame's
            shorter side.
        episode_scores: Also keep every episode's score (NaN for an episode that shows no object).
        kwargs: Options of :class:`torchmetrics.Metric`.

    Raises:
        ValueError: If ``ring_width`` is not a positive int.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import ObjectPersistence
        >>> real = torch.zeros(1, 3, 3, 8, 8)
        >>> real[:, :, 0, 2:5, 2:5] = 1.0
        >>> masks = torch.zeros(1, 3, 1, 8, 8, dtype=torch.bool)
        >>> masks[:, :, 0, 2:5, 2:5] = True
        >>> metric = ObjectPersistence()
        >>> metric.update(real, real, masks)
        >>> metric.compute()
        tensor(1.)
    """

    axis = "object_persistence"

    def __init__(
        self,
        ring_width: int = 1,
        max_shift: int | None = None,
        episode_scores: bool = False,
        num_takes: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(episode_scores=episode_scores, num_takes=num_takes, **kwargs)
        self.ring_width = check_positive_int(ring_width, "ring_width")
        if max_shift is not None and (not isinstance(max_shift, int) or isinstance(max_shift, bool) or max_shift < 0):
            raise ValueError(f"Expected argument `max_shift` to be None or an int >= 0 but got {max_shift!r}")
        self.max_shift = max_shift

    def update(self, preds: Tensor, target: Tensor, masks: Tensor, visible: Tensor | None = None) -> None:
        """Add a batch of episodes with their object masks and visibility."""
        preds, target = self.in_unit_range(preds, target)
        target, masks, visible = one_take(preds, target), one_take(preds, masks), one_take(preds, visible, rank=4)
        self._check_takes(target.shape[1] if has_takes(preds, target) else 1)
        if has_takes(preds, target):
            agreement, finite, has_objects, takes = _object_persistence_takes_update(
                preds, target, masks, visible, self.ring_width, self.max_shift
            )
            self._accumulate(agreement, finite, counted=has_objects, takes=takes)
        else:
            scores, finite, has_objects = _object_persistence_update(preds, target, masks, visible, self.ring_width)
            self._accumulate(scores, finite, counted=has_objects)
