"""A torchmetrics ``Metric`` made of child metrics: every state operation of the base class reaches the children."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from simgate_tracking.metrics._base import SimgateMetric, count_update, forget_computed

# children are synced by their parent (see CompositeMetric.sync), so they never sync or cache on their own
CHILD_OPTIONS = {"sync_on_compute": False, "dist_sync_on_step": False, "compute_with_cache": False}


class CompositeMetric(SimgateMetric):
    """Base of a metric whose states live partly in the child metrics it holds as attributes.

    torchmetrics' ``Metric`` handles the states a metric registers with ``add_state``; it knows nothing of child
    metrics. This class extends every state operation to the children, so the composite behaves as one metric:

    - ``forward`` scores the batch alone (in a fresh copy) and adds it to the running state, as torchmetrics does;
    - :attr:`metric_state` holds the children's states under ``"<child>.<state>"`` keys, and :meth:`merge_state`
      takes such a dict or another composite of the same class;
    - ``persistent``, ``state_dict``/``load_state_dict``, ``reset``, ``set_dtype``, ``clone`` and pickle cover every
      child;
    - ``sync``/``unsync`` (and so ``compute`` across processes) sync every child with the composite: children are
      built with ``CHILD_OPTIONS`` and never sync on their own.

    Subclasses build their children with ``**CHILD_OPTIONS`` among their options, keep the arguments that build an
    empty copy in ``self.init_args``, and compute children with :func:`compute_child`.
    """

    init_args: dict[str, Any]

    def child_metrics(self) -> dict[str, Metric]:
        """The child metrics by attribute name, in the order they were set."""
        return {name: child for name, child in self.named_children() if isinstance(child, Metric)}

    def empty_copy(self) -> CompositeMetric:
        """A composite with this one's settings and no state, on its device.

        It syncs on compute only if this one syncs on every step (``dist_sync_on_step``), as torchmetrics' ``forward``
        scores a batch.
        """
        options = {**self.init_args, "sync_on_compute": self.dist_sync_on_step, "dist_sync_on_step": False}
        return type(self)(**options).to(self.device)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Add a batch, as ``update`` does, and return the batch's own scores, as ``compute`` gives them."""
        batch = self.empty_copy()
        batch.update(*args, **kwargs)
        value = batch.compute()
        if self.dist_sync_on_step:
            # torchmetrics merges no state into such a metric: a second update adds the batch, as its forward does
            self.update(*args, **kwargs)
        else:
            self.merge_state(batch)
            count_update(self)  # a forward is one update, as in torchmetrics
        return value

    @property
    def metric_state(self) -> dict[str, list[Tensor] | Tensor]:
        """Every state: the composite's own, then each child's under ``"<child>.<state>"``."""
        state = dict(super().metric_state)
        for name, child in self.child_metrics().items():
            state.update({f"{name}.{key}": value for key, value in child.metric_state.items()})
        return state

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Merge another composite of the same class, or a dict shaped like :attr:`metric_state`, into this one.

        Raises:
            ValueError: If ``incoming_state`` is neither, or lacks a state.
        """
        if isinstance(incoming_state, Metric):
            if not isinstance(incoming_state, type(self)):
                raise ValueError(
                    f"Expected incoming state to be an instance of {type(self).__name__} but got {type(incoming_state)}"
                )
            incoming_state = incoming_state.metric_state
        if not isinstance(incoming_state, dict):
            raise ValueError(
                f"Expected incoming state to be a dict or a {type(self).__name__} but got {incoming_state}"
            )
        super().merge_state({key: value for key, value in incoming_state.items() if "." not in key})
        for name, child in self.child_metrics().items():
            prefix = f"{name}."
            child.merge_state({k[len(prefix) :]: v for k, v in incoming_state.items() if k.startswith(prefix)})
        forget_computed(self)

    def persistent(self, mode: bool = False) -> None:
        """Whether every state, the children's included, goes into ``state_dict``."""
        super().persistent(mode)
        for child in self.child_metrics().values():
            child.persistent(mode)

    def reset(self) -> None:
        """Reset the composite and every child."""
        super().reset()
        for child in self.child_metrics().values():
            child.reset()

    def set_dtype(self, dst_type: str | torch.dtype) -> Metric:
        """Cast every state, the children's included, to ``dst_type`` (torchmetrics' guard skips children)."""
        super().set_dtype(dst_type)
        for child in self.child_metrics().values():
            child.set_dtype(dst_type)
        return self

    def sync(
        self,
        dist_sync_fn: Any = None,
        process_group: Any = None,
        should_sync: bool = True,
        distributed_available: Any = None,
    ) -> None:
        """Sync the composite's states and every child's across processes (see ``torchmetrics.Metric.sync``)."""
        super().sync(dist_sync_fn, process_group, should_sync, distributed_available)
        for child in self.child_metrics().values():
            child.sync(dist_sync_fn, process_group or self.process_group, should_sync, distributed_available)

    def unsync(self, should_unsync: bool = True) -> None:
        """Restore the local states of the composite and every child after :meth:`sync`."""
        super().unsync(should_unsync)
        for child in self.child_metrics().values():
            child.unsync(should_unsync)


def compute_child(child: Metric) -> Any:
    """A child's value from its states as they are: the composite has synced them, and decides what was measured.

    The class's own ``compute``, without torchmetrics' per-instance wrapper: that wrapper would warn about a child
    whose states came from ``merge_state`` or ``load_state_dict`` rather than ``update``, and cache its value.
    """
    return type(child).compute(child)
