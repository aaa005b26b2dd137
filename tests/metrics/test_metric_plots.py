"""Every metric class plots as torchmetrics' metrics do; the scorecard's plot is the scorecard picture."""

import re
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import to_rgb

from simgate_tracking import AXES, SimulatorGate
from simgate_tracking.loggers import scorecard_figure, scorecard_image
from simgate_tracking.loggers.scorecard_image import BOTTOM, PANEL_LEFT, TOP
from simgate_tracking.metrics import (
    Controllability,
    DeltaPSNR,
    ObjectPersistence,
    ResetReproducibility,
    SimulatorScorecard,
    TaskValidity,
    TemporalConsistency,
    VisualFidelity,
)
from simgate_tracking.plotting import WEAKEST_EDGE
from simgate_tracking.report import GateCheck
from tests.helpers.scenes import make_scene

SCENE = make_scene(episodes=4, size=16, steps=4, seed=2)
REAL = SCENE.targets
FROZEN = REAL[:, :, :1].expand_as(REAL)  # a model that never moves
BRANCH_VALUES = torch.tensor([[0.1, 0.9, 0.5], [0.8, 0.2, 0.4], [0.3, 0.6, 0.9], [0.7, 0.1, 0.2]])

# name: (the metric, its update arguments on two checks: a frozen model, then reality itself)
CASES = {
    Controllability: lambda p, y: (p, y),
    TemporalConsistency: lambda p, y: (p[:, 0], y[:, 0]),
    ObjectPersistence: lambda p, y: (p[:, 0], y[:, 0], SCENE.masks, SCENE.visible),
    ResetReproducibility: lambda p, y: (p[:, 0], y[:, 0], y[:, 0]),
    TaskValidity: lambda p, y: ((p[:, 0, -1].mean((1, 2, 3)) > 0.45), SCENE.success),
    VisualFidelity: lambda p, y: (p, y),
    DeltaPSNR: lambda p, y: (p, y),
}
BOUNDED = (Controllability, TemporalConsistency, ObjectPersistence, ResetReproducibility, TaskValidity)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("metric_class", list(CASES), ids=lambda c: c.__name__)
def test_every_metric_plots_one_value_and_a_sequence_of_checks(metric_class):
    metric = metric_class()
    values = [metric(*CASES[metric_class](FROZEN, REAL)), metric(*CASES[metric_class](REAL, REAL))]
    fig, ax = metric.plot()
    assert fig is not None and ax.get_ylabel() == metric_class.__name__
    fig, ax = metric.plot(values)
    assert ax.get_xlabel() == "Step" and len(ax.get_xticks()) == 2  # torchmetrics' curve over the values
    if isinstance(values[0], dict):
        assert [line.get_label() for line in ax.lines] == list(values[0])
    else:
        assert np.allclose(ax.lines[0].get_ydata(), [float(v) for v in values])
    bounded = metric_class in BOUNDED
    assert (metric.plot_lower_bound, metric.plot_upper_bound) == ((0.0, 1.0) if bounded else (None, None))
    if bounded:
        assert np.allclose(ax.get_ylim(), (-0.1, 1.1))  # torchmetrics draws the bounds with a 10% margin


def _card(task_mode="agreement"):
    card = SimulatorScorecard(task_mode=task_mode)
    task = (
        dict(task_pred=BRANCH_VALUES[:, :3], task_real=BRANCH_VALUES.flip(1))
        if task_mode == "decision"
        else dict(task_pred=SCENE.success.flip(0), task_real=SCENE.success)
    )
    card.update(FROZEN, REAL, second=FROZEN[:, 0], masks=SCENE.masks, visible=SCENE.visible, **task)
    return card


def test_scorecard_plot_is_the_scorecard_picture():
    card = _card()
    scores = card.compute()
    fig, ax = card.plot()
    result = SimulatorGate().evaluate(scores)
    assert [label.get_text() for label in ax.get_yticklabels()] == list(result.scores) == list(AXES)
    assert [round(bar.get_width(), 4) for bar in ax.patches] == [round(float(scores[a]), 4) for a in AXES]
    outlined = [bar for bar in ax.patches if bar.get_linewidth() == 2]
    assert len(outlined) == 1 and outlined[0].get_edgecolor()[:3] == pytest.approx(to_rgb(WEAKEST_EDGE))
    assert outlined[0].get_width() == pytest.approx(result.min_axis)
    assert ax.get_title(loc="left") == f"FAIL, weakest {result.weakest_axis} {result.min_axis:.3f} (threshold 0.65)"
    panel = "\n".join(text.get_text() for other in fig.axes if other is not ax for text in other.texts)
    assert panel.startswith("frame quality\n(not gated)") and f"psnr: {float(scores['psnr']):.3f}" in panel


def test_scorecard_plot_takes_a_threshold_and_draws_into_a_given_axes():
    card = _card()
    fig, ax = plt.subplots()
    got_fig, got_ax = card.plot(ax=ax, threshold={"temporal_consistency": 0.0, "controllability": 0.1})
    assert got_ax is ax and got_fig is fig
    ticks = ax.collections[0].get_segments()  # the threshold ticks, one per axis
    assert [seg[0][0] for seg in ticks][:2] == [0.1, 0.0]


def test_scorecard_plot_of_a_sequence_draws_every_gated_axis_over_the_checks():
    card = SimulatorScorecard()
    values = [card(FROZEN, REAL, second=FROZEN[:, 0]), card(REAL, REAL, second=REAL[:, 0])]
    fig, ax = card.plot(values)
    lines = [line for line in ax.lines if line.get_label() in AXES]
    assert [line.get_label() for line in lines] == ["controllability", "temporal_consistency", "reset_reproducibility"]
    assert np.allclose(lines[0].get_ydata(), [float(v["controllability"]) for v in values])
    assert lines[1].get_ydata()[-1] == pytest.approx(1.0) and ax.get_ylim() == pytest.approx((-0.05, 1.05))
    assert ax.get_xlabel() == "check" and list(ax.get_xticks()) == [0, 1]


def test_decision_scores_have_their_own_heading_in_the_scorecard_picture():
    scores = {name: float(value) for name, value in _card("decision").compute().items()}
    assert "decision_no_regret" in scores
    check = GateCheck(SimulatorGate().evaluate(scores), step=3, epoch=0, manifest_hash="0")
    figure = scorecard_figure(check)
    panel = figure.axes[1].texts[0].get_text()
    quality, decisions = panel.split("\n\ndecisions\n(not gated)\n\n")
    assert "decision_no_regret" not in quality and decisions.startswith("decision_no_regret: ")
    # the dashboards' picture: 2 headings, 2 "(not gated)", psnr, ssim, delta_psnr and decision_no_regret
    pixels = scorecard_image(check)
    panel = pixels[TOP : pixels.shape[0] - BOTTOM, PANEL_LEFT:]
    rows = np.flatnonzero((panel.max(-1) < 128).any(1))
    assert len(np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)) == 8


@pytest.mark.parametrize("module", ["matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"])
@pytest.mark.parametrize("metric", [Controllability(), SimulatorScorecard()], ids=["axis", "scorecard"])
def test_plot_without_matplotlib_names_the_extra_to_install(metric, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install simgate-tracking[media]")):
        metric.plot(torch.tensor(0.5) if isinstance(metric, Controllability) else {"controllability": 0.5})
