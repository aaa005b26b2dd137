"""The scorecard's ``plot``: the scorecard picture of one value, the gated axes' curves over several."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simgate_tracking.gate import DEFAULT_THRESHOLD, SimulatorGate
from simgate_tracking.plotting import require_matplotlib, scorecard_curves, scorecard_picture
from simgate_tracking.report import verdict_text


def plot_scorecard(
    val: Any,
    ax: Any = None,
    threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
    real_baseline: Mapping[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The scorecard picture of one value, or the gated axes' curves over a sequence of values.

    One value (a dict of scores, as ``compute`` or ``forward`` returns it) is drawn as the dashboards draw a check: a
    bar per gated axis against its threshold, the weakest axis outlined, the verdict in the title, frame quality and
    decision scores beside it. A sequence of values (one per check) is drawn as a line per gated axis over the checks,
    on 0..1, with the thresholds dashed.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed (the ``media`` extra).
        ValueError: If ``val`` is neither a dict of scores nor a sequence of them.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import SimulatorScorecard
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
    require_matplotlib()
    gate = SimulatorGate(threshold)
    if isinstance(val, Mapping):
        result = gate.evaluate(val, real_baseline=real_baseline)
        return scorecard_picture(result, verdict_text(result), ax)
    if isinstance(val, Sequence) and all(isinstance(item, Mapping) for item in val):
        return scorecard_curves([gate.evaluate(item) for item in val], ax)
    raise ValueError(f"Expected a dict of scores or a sequence of them to plot but got {type(val).__name__}")
