"""Bad input to the metrics: clear errors at setup and update, NaN/Inf rollouts scored 0 with one warning."""

import warnings

import pytest
import torch

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

B, K1, T, C, H, W = 2, 3, 4, 3, 8, 8


def clip(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def masks(b=B, t=T, n=2):
    m = torch.zeros(b, t, n, H, W, dtype=torch.bool)
    m[:, :, 0, 1:3, 1:3] = True
    m[:, :, 1, 5:7, 5:7] = True
    return m


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "message"),
    [
        (ObjectPersistence, {"ring_width": 0}, ValueError, "`ring_width` to be a positive int but got 0"),
        (ObjectPersistence, {"ring_width": 1.5}, ValueError, "`ring_width` to be a positive int but got 1.5"),
        (TaskValidity, {"mode": "accuracy"}, ValueError, "`mode` to be one of ('agreement', 'ranking'"),
        (TaskValidity, {"num_groups": 1}, ValueError, "`num_groups` to be an int >= 2 but got 1"),
        (TaskValidity, {"num_groups": True}, ValueError, "`num_groups` to be an int >= 2 but got True"),
        (VisualFidelity, {"kernel_size": 4}, ValueError, "`kernel_size` to be an odd int >= 3 but got 4"),
        (Controllability, {"episode_scores": "yes"}, ValueError, "`episode_scores` to be a bool but got 'yes'"),
        (SimulatorScorecard, {"task_mode": "vibes"}, ValueError, "`mode` to be one of"),
    ],
)
def test_bad_constructor_argument_is_refused_at_once(make, kwargs, error, message):
    with pytest.raises(error) as info:
        make(**kwargs)
    assert message in str(info.value)


BAD_UPDATES = [
    (
        Controllability,
        (clip(B, T, C, H, W), clip(B, T, C, H, W)),
        ValueError,
        "`preds` to have shape (B, K+1, T, C, H, W)",
    ),
    (
        Controllability,
        (clip(B, K1, T, C, H, W), clip(B, K1, T, C, H, 7)),
        ValueError,
        "(2, 3, 4, 3, 8, 8) and (2, 3, 4",
    ),
    (Controllability, (clip(B, 1, T, C, H, W), clip(B, 1, T, C, H, W)), ValueError, "K >= 1 counterfactual"),
    (Controllability, ([[0.5]], clip(B, K1, T, C, H, W)), TypeError, "`preds` to be a torch.Tensor"),
    (
        Controllability,
        (torch.zeros(B, K1, T, C, H, W, dtype=torch.int32), clip(B, K1, T, C, H, W)),
        TypeError,
        "`preds` to be a float tensor in [0, 1] or uint8 but got dtype torch.int32",
    ),
    (DeltaPSNR, (clip(B, 1, T, C, H, W), clip(B, 1, T, C, H, W)), ValueError, "but got K+1 = 1"),
    (TemporalConsistency, (clip(B, 1, C, H, W), clip(B, 1, C, H, W)), ValueError, "T >= 2 steps"),
    (
        TemporalConsistency,
        (clip(B, T, H, W), clip(B, T, H, W)),
        ValueError,
        "(B, T, C, H, W) (5 dims) but got shape (2",
    ),
    (
        ResetReproducibility,
        (clip(B, T, C, H, W), clip(B + 1, T, C, H, W), clip(B, T, C, H, W)),
        ValueError,
        "`second` and `target` to have the same shape",
    ),
    (
        ObjectPersistence,
        (clip(B, T, C, H, W), clip(B, T, C, H, W), masks(t=T + 1)),
        ValueError,
        "`masks` to have shape (B, T, N, H, W) = (2, 4, ?, 8, 8) but got (2, 5, 2, 8, 8)",
    ),
    (
        ObjectPersistence,
        (clip(B, T, C, H, W), clip(B, T, C, H, W), masks().float()),
        TypeError,
        "`masks` to be a bool tensor but got dtype torch.float32",
    ),
    (
        ObjectPersistence,
        (clip(B, T, C, H, W), clip(B, T, C, H, W), masks(), torch.ones(B, T, 3, dtype=torch.bool)),
        ValueError,
        "`visible` to have shape (B, T, N) = (2, 4, 2) but got (2, 4, 3)",
    ),
    (
        ObjectPersistence,
        (clip(B, T, C, H, W), clip(B, T, C, H, W), masks(), torch.ones(B, T, 2)),
        TypeError,
        "`visible` to be a bool tensor but got dtype torch.float32",
    ),
    (TaskValidity, (torch.ones(B, 1), torch.ones(B, 1)), ValueError, "`pred` to have shape (B,)"),
    (TaskValidity, (torch.ones(3), torch.ones(2)), ValueError, "`pred` and `real` to have the same shape"),
    (VisualFidelity, (clip(C, H, W), clip(C, H, W)), ValueError, "`preds` to have shape (..., C, H, W)"),
    (VisualFidelity, (clip(2, C, H, W), clip(3, C, H, W)), ValueError, "`preds` and `target` to have the same shape"),
]


@pytest.mark.parametrize(("make", "args", "error", "message"), BAD_UPDATES)
def test_bad_update_input_names_the_argument_expected_and_given(make, args, error, message):
    with pytest.raises(error) as info:
        make().update(*args)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("groups", "error", "message"),
    [
        (None, ValueError, "Expected `groups` (policy id per episode, (B,) int) with mode='ranking' but got None"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "`groups` to be an integer tensor of policy ids but got dtype"),
        (torch.tensor([0, 1]), ValueError, "`groups` and `real` to have the same shape"),
    ],
)
def test_bad_policy_groups_are_refused(groups, error, message):
    with pytest.raises(error) as info:
        TaskValidity(mode="ranking", num_groups=4).update(torch.ones(3), torch.ones(3), groups)
    assert message in str(info.value)


@pytest.mark.parametrize("bad_id", [4, -1])
def test_policy_ids_out_of_range_are_reported_by_compute(bad_id):
    metric = TaskValidity(mode="ranking", num_groups=4)
    metric.update(torch.ones(3), torch.ones(3), torch.tensor([0, 1, bad_id]))  # never read on the host here
    with pytest.raises(ValueError, match=r"`groups` \(policy ids\) in \[0, 4\) but got 1 id\(s\) outside it"):
        metric.compute()


def test_scorecard_needs_both_task_outcomes():
    with pytest.raises(ValueError, match="`task_pred` and `task_real` together but got only one"):
        SimulatorScorecard().update(clip(B, K1, T, C, H, W), clip(B, K1, T, C, H, W), task_pred=torch.ones(B))


@pytest.mark.parametrize(
    "metric",
    [
        Controllability(),
        TemporalConsistency(),
        ObjectPersistence(),
        ResetReproducibility(),
        TaskValidity(),
        VisualFidelity(),
        DeltaPSNR(),
        SimulatorScorecard(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_compute_before_update_raises_a_clear_error(metric):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics' own note about the order of calls
        with pytest.raises(RuntimeError, match=rf"{type(metric).__name__}\.compute\(\).*(update|before)"):
            metric.compute()


def test_object_persistence_without_any_visible_object_says_so():
    metric = ObjectPersistence()
    metric.update(clip(B, T, C, H, W), clip(B, T, C, H, W), masks(), torch.zeros(B, T, 2, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="that shows an object"):
        metric.compute()


def poisoned(x, index, value):
    x = x.clone()
    x[index] = value
    return x


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize(
    ("make", "args", "episode"),
    [
        (Controllability, lambda p, y: (p, y), 1),
        (TemporalConsistency, lambda p, y: (p[:, 0], y[:, 0]), 1),
        (ObjectPersistence, lambda p, y: (p[:, 0], y[:, 0], masks()), 1),
        (ResetReproducibility, lambda p, y: (y[:, 0], p[:, 0], y[:, 0]), 1),
    ],
)
def test_non_finite_rollout_scores_zero_on_its_episode_with_one_warning(make, args, episode, bad):
    real = clip(B, K1, T, C, H, W)
    preds = poisoned(real, (episode, 0, 2, 1, 3, 3), bad)
    metric = make(episode_scores=True)
    metric.update(*args(preds, real))
    with pytest.warns(UserWarning, match=rf"1 rollout\(s\) had NaN or Inf frames; they score 0 on {metric.axis}"):
        score = metric.compute()
    assert score == pytest.approx(0.5, abs=1e-6)
    assert metric.episode_scores().tolist() == pytest.approx([1.0, 0.0], abs=1e-6)


def test_non_finite_task_outcome_counts_as_wrong_with_one_warning():
    metric = TaskValidity()
    metric.update(torch.tensor([1.0, float("nan"), 0.0, 0.0]), torch.tensor([True, True, False, False]))
    with pytest.warns(UserWarning, match=r"1 task outcome\(s\) .* NaN or Inf; they count as wrong"):
        assert metric.compute() == pytest.approx(0.5)


def test_scorecard_warns_once_for_every_axis_a_nan_rollout_touches():
    real, m = clip(B, K1, T, C, H, W), masks()
    preds = poisoned(real, (0, 2, 1, 0, 4, 4), float("nan"))  # a counterfactual branch only
    second = poisoned(real[:, 0], (1, 0, 0, 0, 0), float("inf"))
    card = SimulatorScorecard()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        card.update(preds, real, second=second, masks=m, task_pred=torch.ones(B), task_real=torch.ones(B))
        scores = card.compute()
    messages = [str(w.message) for w in caught if "NaN or Inf" in str(w.message)]
    assert len(messages) == 1, messages
    assert "controllability (1), reset_reproducibility (1)" in messages[0]
    assert "temporal_consistency" not in messages[0] and "object_persistence" not in messages[0]
    assert scores["controllability"] == pytest.approx(0.5, abs=1e-6)
    assert scores["reset_reproducibility"] == pytest.approx(0.5, abs=1e-6)
    assert scores["temporal_consistency"] == 1.0 and scores["object_persistence"] == 1.0
    assert all(torch.isfinite(value) for value in scores.values())


def test_all_nan_rollouts_never_give_a_nan_score():
    real = clip(B, K1, T, C, H, W)
    preds = torch.full_like(real, float("nan"))
    card = SimulatorScorecard()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card.update(
            preds,
            real,
            second=preds[:, 0],
            masks=masks(),
            task_pred=preds[:, 0, 0, 0, 0, 0],
            task_real=real[:, 0, 0, 0, 0, 0],
        )
        scores = card.compute()
    assert all(torch.isfinite(value) for value in scores.values()), scores
    assert all(scores[axis] == 0.0 for axis in ("controllability", "temporal_consistency", "object_persistence"))
    assert scores["reset_reproducibility"] == 0.0 and scores["task_validity"] == 0.0


def test_scorecard_leaves_out_an_axis_with_nothing_to_score_and_says_so():
    real = clip(B, K1, T, C, H, W)
    card = SimulatorScorecard(task_mode="ranking", num_groups=3)
    no_object = torch.zeros(B, T, 2, dtype=torch.bool)
    one_policy = torch.zeros(B, dtype=torch.long)
    card.update(
        real,
        real,
        masks=masks(),
        visible=no_object,
        task_pred=torch.ones(B),
        task_real=torch.ones(B),
        groups=one_policy,
    )
    with pytest.warns(UserWarning) as caught:
        scores = card.compute()
    messages = " | ".join(str(w.message) for w in caught)
    assert "object_persistence is left out of the scorecard" in messages
    assert "task_validity is left out of the scorecard" in messages and "at least 2 policy groups" in messages
    assert "object_persistence" not in scores and "task_validity" not in scores
    assert scores["controllability"] == 1.0


@pytest.mark.parametrize("takes", [1, 3])
def test_masks_without_object_slots_leave_nothing_to_score(takes):
    g = torch.Generator().manual_seed(0)
    preds = torch.rand(2, 4, 3, 16, 16, generator=g)
    shape = (2, 4) if takes == 1 else (2, takes, 4)
    target = torch.rand(*shape, 3, 16, 16, generator=g)
    metric = ObjectPersistence(num_takes=takes)
    metric.update(preds, target, torch.zeros(*shape, 0, 16, 16, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="no scored episode"):
        metric.compute()


@pytest.mark.parametrize("cpu_kernel", [True, False])
def test_a_scorecard_with_no_object_slot_leaves_object_persistence_out(cpu_kernel):
    frames = torch.rand(2, 3, 4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    card = SimulatorScorecard(cpu_kernel=cpu_kernel)
    card.update(frames, frames.clone(), masks=torch.zeros(2, 4, 0, 16, 16, dtype=torch.bool))
    with pytest.warns(UserWarning, match="object_persistence is left out"):
        scores = card.compute()
    assert "object_persistence" not in scores and scores["controllability"] == 1
