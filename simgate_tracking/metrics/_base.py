"""The base of every metric class here: torchmetrics' ``Metric`` with its plot and merge conventions completed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torchmetrics import Metric

from simgate_tracking.plotting import require_matplotlib
from simgate_tracking.value_range import UNIT_RANGE, ValueRangeLike, check_value_range, rescaled

PlotValue = Tensor | Sequence[Tensor] | dict[str, Tensor] | Sequence[dict[str, Tensor]] | None


class SimgateMetric(Metric):
    """The base of this package's metrics: torchmetrics' ``Metric``, with two conventions completed.

    - ``plot`` is torchmetrics' own plot, bounded by the class's ``plot_lower_bound`` and ``plot_upper_bound`` (0 and
      1 for an axis in [0, 1]); a missing matplotlib raises naming this package's extra.
    - ``merge_state`` forgets a value cached by an earlier ``compute()``, as ``update`` does (torchmetrics' keeps it,
      and ``compute()`` would return the value from before the merge).

    Every metric takes ``value_range``: the range of the float frames given to ``update`` (rollouts and real frames
    alike), for example ``(-1, 1)`` for a tanh output or ``(0, 255)``; they are rescaled to [0, 1] before scoring.
    uint8 frames are read as 0..255 whatever it says.
    """

    def __init__(self, value_range: ValueRangeLike = UNIT_RANGE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value_range = check_value_range(value_range)

    def in_unit_range(self, *frames: Any) -> tuple[Any, ...]:
        """``frames`` rescaled from ``value_range`` to [0, 1]; None and non-float tensors pass, pairs element-wise."""
        return tuple(self._unit(x) for x in frames)

    def _unit(self, x: Any) -> Any:
        if isinstance(x, tuple):
            return tuple(self._unit(part) for part in x)
        return rescaled(x, self.value_range) if isinstance(x, Tensor) else x

    def plot(self, val: PlotValue = None, ax: Any = None) -> tuple[Any, Any]:
        """Plot one value, or a sequence of values (one per check) as a curve; default the value of ``compute()``.

        Args:
            val: What ``forward`` or ``compute`` returned, or a sequence of such values.
            ax: A matplotlib ``Axes`` to draw in; default a new figure.

        Returns:
            The figure (None when ``ax`` was given) and the ``Axes``, as torchmetrics' ``plot`` returns them.

        Raises:
            ModuleNotFoundError: If matplotlib is not installed (the ``media`` extra).

        Example:
            >>> import torch
            >>> from simgate_tracking.metrics import Controllability
            >>> real = torch.rand(4, 3, 5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
            >>> metric = Controllability()
            >>> values = [metric(real[:, :1].expand_as(real), real), metric(real, real)]  # two checks
            >>> fig, ax = metric.plot(values)
            >>> [round(float(y), 2) for y in ax.lines[0].get_ydata()], [round(float(y), 2) for y in ax.get_ylim()]
            ([0.0, 1.0], [-0.1, 1.1])
        """
        require_matplotlib()
        return self._plot(val, ax)

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Merge another metric of this class, or a dict of its states, into this one (see ``Metric.merge_state``)."""
        super().merge_state(incoming_state)
        forget_computed(self)


def count_update(metric: Metric) -> None:
    """Record an update made without calling ``update``, as torchmetrics' wrapper of ``update`` records one.

    torchmetrics has no public call for this: it sets the two attributes its wrapper of ``update`` sets.
    """
    metric._update_count += 1
    forget_computed(metric)


def forget_computed(metric: Metric) -> None:
    """Drop the value cached by the last ``compute()``: the states changed outside ``update``."""
    metric._computed = None
