"""Properties of every metric, for any input hypothesis finds: bounded and finite, chunk-invariant, uint8 = float."""

import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

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

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def bundles(draw, low=-0.5, high=1.5, nonfinite=False):
    """A small rollout bundle: model frames (any finite values, or any values), real frames in [0, 1], outcomes."""
    b, k1, t = draw(st.integers(1, 4)), draw(st.integers(2, 3)), draw(st.integers(2, 4))
    c, h, w, n = (
        draw(st.sampled_from([1, 3])),
        draw(st.integers(3, 6)),
        draw(st.integers(3, 6)),
        draw(st.integers(1, 2)),
    )
    model_values = st.floats(width=32) if nonfinite else st.floats(low, high, width=32)
    model = draw(arrays(np.float32, (b, k1, t, c, h, w), elements=model_values))
    real = draw(arrays(np.float32, (b, k1, t, c, h, w), elements=st.floats(0, 1, width=32)))
    second = draw(arrays(np.float32, (b, t, c, h, w), elements=model_values))
    masks = draw(arrays(np.bool_, (b, t, n, h, w)))
    visible = draw(arrays(np.bool_, (b, t, n)))
    outcome = draw(arrays(np.float32, (b,), elements=st.floats(width=32) if nonfinite else st.floats(-3, 3, width=32)))
    success = draw(arrays(np.bool_, (b,)))
    groups = draw(arrays(np.int64, (b,), elements=st.integers(0, 2)))
    as_tensor = torch.from_numpy
    return {
        "preds": as_tensor(model),
        "target": as_tensor(real),
        "second": as_tensor(second),
        "masks": as_tensor(masks),
        "visible": as_tensor(visible),
        "returns": as_tensor(outcome),
        "success": as_tensor(success),
        "groups": as_tensor(groups),
    }


def updates(bundle):
    """(metric, update arguments) for every metric class on one bundle."""
    p, y = bundle["preds"], bundle["target"]
    return [
        (Controllability(episode_scores=True), (p, y)),
        (TemporalConsistency(episode_scores=True), (p[:, 0], y[:, 0])),
        (ResetReproducibility(episode_scores=True), (p[:, 0], bundle["second"], y[:, 0])),
        (ObjectPersistence(episode_scores=True), (p[:, 0], y[:, 0], bundle["masks"], bundle["visible"])),
        (TaskValidity(), (bundle["returns"], bundle["success"])),
        (TaskValidity(mode="ranking", num_groups=3), (bundle["returns"], bundle["returns"].flip(0), bundle["groups"])),
        (VisualFidelity(), (p, y)),
        (DeltaPSNR(), (p, y)),
    ]


def compute(metric):
    """The metric's scores as a dict of floats; an axis with nothing to score (no object, one policy) gives {}."""
    try:
        value = metric.compute()
    except (RuntimeError, ValueError) as err:
        if "shows an object" in str(err) or "at least 2 policy groups" in str(err):
            return {}
        raise
    return {name: float(v) for name, v in value.items()} if isinstance(value, dict) else {"score": float(value)}


def chunked(args, parts):
    """Split every update argument along the episode dimension into ``parts`` consecutive chunks."""
    b = args[0].shape[0]
    bounds = np.linspace(0, b, parts + 1).round().astype(int)
    return [tuple(a[lo:hi] for a in args) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


@SETTINGS
@given(bundle=bundles())
def test_every_axis_is_in_zero_one_and_finite_for_any_finite_input(bundle):
    for metric, args in updates(bundle):
        metric.update(*args)
        for name, value in compute(metric).items():
            assert np.isfinite(value), (type(metric).__name__, name)
            if not isinstance(metric, (VisualFidelity, DeltaPSNR)):
                assert 0.0 <= value <= 1.0, (type(metric).__name__, value)
        if getattr(metric, "keeps_episode_scores", False):
            kept = metric.episode_scores()
            seen = kept[~kept.isnan()]
            assert ((seen >= 0) & (seen <= 1)).all()


@SETTINGS
@given(bundle=bundles(nonfinite=True))
def test_no_score_is_ever_nan_whatever_the_model_outputs(bundle):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NaN/Inf warning itself is tested elsewhere
        for metric, args in updates(bundle):
            metric.update(*args)
            for name, value in compute(metric).items():
                assert np.isfinite(value), (type(metric).__name__, name)
                if not isinstance(metric, (VisualFidelity, DeltaPSNR)):
                    assert 0.0 <= value <= 1.0, (type(metric).__name__, value)


@SETTINGS
@given(bundle=bundles(), parts=st.integers(2, 4))
def test_feeding_episodes_in_chunks_equals_one_update(bundle, parts):
    for (whole, args), (streamed, _) in zip(updates(bundle), updates(bundle), strict=True):
        whole.update(*args)
        for chunk in chunked(args, parts):
            streamed.update(*chunk)
        one, many = compute(whole), compute(streamed)
        assert one.keys() == many.keys()
        for name in one:
            # float32 running sums: a different order of additions moves the last digits
            assert many[name] == pytest.approx(one[name], abs=1e-6, rel=1e-5), (type(whole).__name__, name)


@SETTINGS
@given(bundle=bundles(low=0.0, high=1.0), parts=st.integers(1, 3))
def test_scorecard_is_chunk_invariant(bundle, parts):
    p, y = bundle["preds"], bundle["target"]
    args = (p, y, p[:, 0].flip(-1), bundle["masks"], bundle["visible"], bundle["success"].float(), bundle["success"])
    whole, streamed = SimulatorScorecard(), SimulatorScorecard()
    whole.update(*args)
    for chunk in chunked(args, parts):
        streamed.update(*chunk)
    one, many = whole.compute(), streamed.compute()
    assert list(one) == list(many)
    for name in one:
        assert float(many[name]) == pytest.approx(float(one[name]), abs=1e-5, rel=1e-6), name


@SETTINGS
@given(bundle=bundles(low=0.0, high=1.0))
def test_uint8_frames_score_as_the_same_frames_in_float(bundle):
    as_bytes = {key: (bundle[key] * 255).round().to(torch.uint8) for key in ("preds", "target", "second")}
    as_float = {**bundle, **{key: value.float() / 255 for key, value in as_bytes.items()}}
    for (from_bytes, byte_args), (from_float, float_args) in zip(
        updates({**bundle, **as_bytes}), updates(as_float), strict=True
    ):
        from_bytes.update(*byte_args)
        from_float.update(*float_args)
        expected = compute(from_float)
        for name, value in compute(from_bytes).items():
            assert value == pytest.approx(expected[name], abs=1e-6, rel=1e-6), (type(from_bytes).__name__, name)
