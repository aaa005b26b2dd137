"""The five axes, frame quality and the scorecard: known values, functional twins, running-sum states."""

import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from simgate_tracking.functional import (
    controllability,
    delta_psnr,
    object_persistence,
    reset_reproducibility,
    task_validity,
    temporal_consistency,
)
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


def frames(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def square_scene(steps=4, size=14):
    """One red square on a grey background, with its mask: (1, T, 3, S, S) frames, (1, T, 1, S, S) masks."""
    real = torch.full((1, steps, 3, size, size), 0.4)
    real[:, :, :, 4:8, 4:8] = torch.tensor([0.9, 0.1, 0.1]).view(3, 1, 1)
    masks = torch.zeros(1, steps, 1, size, size, dtype=torch.bool)
    masks[..., 4:8, 4:8] = True
    return real, masks


def test_controllability_known_values():
    real = frames(3, 3, 4, 3, 8, 8)
    assert controllability(real, real) == 1.0
    assert controllability(real[:, :1].expand_as(real), real) == pytest.approx(0.0, abs=1e-6)
    # half the real effect of every action change: 2 * 0.5 / (1 + 0.25)
    half = real[:, :1] + 0.5 * (real - real[:, :1])
    assert controllability(half, real) == pytest.approx(0.8, abs=1e-5)
    opposite = real[:, :1] - (real - real[:, :1])
    assert controllability(opposite, real) == 0.0


def test_temporal_consistency_known_values():
    real = frames(2, 5, 3, 8, 8)
    assert temporal_consistency(real, real) == 1.0
    assert temporal_consistency(real[:, :1].expand_as(real), real) == pytest.approx(0.0, abs=1e-6)
    half_speed = real[:, :1] + 0.5 * (real - real[:, :1])
    assert temporal_consistency(half_speed, real) == pytest.approx(0.8, abs=1e-5)


def test_object_persistence_known_values():
    real, masks = square_scene()
    assert object_persistence(real, real, masks) == 1.0
    gone = real.clone()
    gone[:, 2:] = 0.4
    assert object_persistence(gone, real, masks) == pytest.approx(0.0, abs=1e-6)
    # a quarter of the way from the object towards the background: 1 - 0.25^2
    faded = real.clone()
    faded[:, 3] = 0.75 * real[:, 3] + 0.25 * 0.4
    assert object_persistence(faded, real, masks) == pytest.approx(1 - 0.0625, abs=1e-5)


def test_object_persistence_weighs_a_partly_visible_step_by_the_part_shown():
    real, masks = square_scene()
    real[:, 3, :, :, 6:] = 0.4  # at the last step, a panel of the background's colour hides half the square
    masks[:, 3, :, :, 6:] = False
    gone = real.clone()
    gone[:, 3] = 0.4
    assert object_persistence(gone, real, masks) == pytest.approx(0.5, abs=1e-5)
    gone[:, 2] = 0.4  # gone at a step where it is fully visible
    assert object_persistence(gone, real, masks) == pytest.approx(0.0, abs=1e-6)


def test_object_persistence_scores_the_weakest_track_and_skips_episodes_without_objects():
    real, masks = square_scene()
    real, two = real.repeat(3, 1, 1, 1, 1), torch.cat([masks, masks.roll((5, 4), dims=(-2, -1))], dim=2)
    real[:, :, :, 9:13, 8:12] = torch.tensor([0.1, 0.1, 0.9]).view(3, 1, 1)  # a blue square, apart from it
    two = two.repeat(3, 1, 1, 1, 1)
    visible = two.flatten(3).any(dim=3)
    visible[2] = False  # episode 2 shows nothing
    preds = real.clone()
    preds[0, 1:, :, 9:13, 8:12] = 0.4  # episode 0 loses its blue square only
    metric = ObjectPersistence(episode_scores=True)
    metric.update(preds, real, two, visible)
    assert metric.compute() == pytest.approx(0.5)
    scores = metric.episode_scores()
    assert scores[:2].tolist() == pytest.approx([0.0, 1.0], abs=1e-6) and scores[2].isnan()
    assert object_persistence(preds, real, two, visible) == pytest.approx(0.5)


def test_reset_reproducibility_known_values():
    real = frames(2, 4, 3, 8, 8)
    assert reset_reproducibility(real, real.clone(), real) == 1.0
    scale = 2 * (real - real.mean(dim=1, keepdim=True)).square().sum(dim=(1, 2, 3, 4))
    drift = 0.5 * (real[[1, 0]] - real)
    expected = (1 - drift.square().sum(dim=(1, 2, 3, 4)) / scale).clamp(0, 1).mean()
    assert reset_reproducibility(real, real + drift, real) == pytest.approx(float(expected), abs=1e-5)


def test_task_validity_agreement_is_informedness():
    real = torch.tensor([True, True, False, False, False])
    assert task_validity(real, real) == 1.0
    assert task_validity(torch.ones(5, dtype=torch.bool), real) == 0.0
    assert task_validity(~real, real) == 0.0
    # TPR 1/2 + TNR 2/3 - 1
    said = torch.tensor([True, False, True, False, False])
    assert task_validity(said, real) == pytest.approx(1 / 2 + 2 / 3 - 1)
    assert task_validity(torch.tensor([0.9, 0.2, 0.7, 0.1, 0.4]), real) == pytest.approx(1 / 2 + 2 / 3 - 1)


def test_task_validity_ranking_is_spearman_of_group_means():
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    real = torch.tensor([0.0, 0.2, 1.0, 1.2, 2.0, 2.2, 3.0, 3.2])
    assert task_validity(real * 10 + 5, real, groups, mode="ranking") == 1.0
    assert task_validity(-real, real, groups, mode="ranking") == 0.0
    # group means ranked 1, 0, 2, 3 against 0, 1, 2, 3: rho = 1 - 6 * 2 / (4 * 15)
    swapped = real.clone()
    swapped[:2], swapped[2:4] = real[2:4], real[:2]
    assert task_validity(swapped, real, groups, mode="ranking") == pytest.approx(0.8, abs=1e-6)


def test_visual_fidelity_matches_torchmetrics():
    preds, real = frames(2, 3, 3, 16, 16, seed=1), frames(2, 3, 3, 16, 16, seed=2)
    metric = VisualFidelity()
    metric.update(preds, real)
    scores = metric.compute()
    psnr = PeakSignalNoiseRatio(data_range=1.0)(preds.flatten(0, 1), real.flatten(0, 1))
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)(preds.flatten(0, 1), real.flatten(0, 1))
    assert scores["psnr"] == pytest.approx(float(psnr), abs=1e-4)
    assert scores["ssim"] == pytest.approx(float(ssim), abs=1e-5)


def test_delta_psnr_is_zero_when_actions_are_ignored_and_positive_when_they_matter():
    real = frames(2, 3, 4, 3, 8, 8)
    assert delta_psnr(real[:, :1].expand_as(real), real) == 0.0
    noisy = (real + 0.01 * frames(2, 3, 4, 3, 8, 8, seed=3)).clamp(0, 1)
    assert delta_psnr(noisy, real) > 20.0


FRAME_METRICS = [
    (Controllability, controllability, lambda p, y: (p, y)),
    (TemporalConsistency, temporal_consistency, lambda p, y: (p[:, 0], y[:, 0])),
    (ResetReproducibility, reset_reproducibility, lambda p, y: (p[:, 0], p[:, 1], y[:, 0])),
]


@pytest.mark.parametrize(("metric_class", "functional", "args"), FRAME_METRICS)
def test_metric_class_equals_its_functional_twin(metric_class, functional, args):
    preds, real = frames(6, 3, 4, 3, 8, 8, seed=4), frames(6, 3, 4, 3, 8, 8, seed=5)
    metric = metric_class(episode_scores=True)
    for part in (slice(0, 2), slice(2, 6)):
        metric.update(*args(preds[part], real[part]))
    assert metric.compute() == pytest.approx(float(functional(*args(preds, real))), abs=1e-6)
    per_episode = [float(functional(*args(preds[i : i + 1], real[i : i + 1]))) for i in range(6)]
    assert metric.episode_scores().tolist() == pytest.approx(per_episode, abs=1e-6)


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
    ],
    ids=lambda m: type(m).__name__,
)
def test_states_are_running_sums_of_fixed_size(metric):
    assert metric._reductions and all(fn.__name__ == "dim_zero_sum" for fn in metric._reductions.values())
    sizes = {name: getattr(metric, name).shape for name in metric._defaults}
    assert all(getattr(metric, name).numel() <= 4 * 64 for name in metric._defaults)
    real, masks = square_scene()
    branches = real.unsqueeze(1).repeat(1, 2, 1, 1, 1, 1)
    for _ in range(3):
        if isinstance(metric, (Controllability, DeltaPSNR, VisualFidelity)):
            metric.update(branches, branches)
        elif isinstance(metric, ObjectPersistence):
            metric.update(real, real, masks)
        elif isinstance(metric, ResetReproducibility):
            metric.update(real, real, real)
        elif isinstance(metric, TaskValidity):
            metric.update(torch.tensor([True]), torch.tensor([False]))
        else:
            metric.update(real, real)
    assert {name: getattr(metric, name).shape for name in metric._defaults} == sizes
    assert metric.higher_is_better and not metric.full_state_update


def test_scorecard_equals_the_axis_metrics_it_holds():
    real, masks = square_scene(steps=5)
    real = real.repeat(4, 1, 1, 1, 1) * frames(4, 1, 1, 1, 1, seed=6).add(0.5).clamp(max=1)
    target = torch.stack([real, real.roll(1, dims=-1), real.roll(-1, dims=-2)], dim=1)
    preds = (target + 0.05 * frames(*target.shape, seed=7)).clamp(0, 1)
    second, masks = preds[:, 0].flip(-1), masks.repeat(4, 1, 1, 1, 1)
    task_pred, task_real = torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([True, False, False, True])
    card = SimulatorScorecard()
    card.update(preds, target, second=second, masks=masks, task_pred=task_pred, task_real=task_real)
    scores = card.compute()
    assert list(scores) == [
        "controllability",
        "temporal_consistency",
        "object_persistence",
        "reset_reproducibility",
        "task_validity",
        "psnr",
        "ssim",
        "delta_psnr",
    ]
    assert scores["controllability"] == pytest.approx(float(controllability(preds, target)), abs=1e-6)
    assert scores["temporal_consistency"] == pytest.approx(float(temporal_consistency(preds[:, 0], target[:, 0])))
    assert scores["object_persistence"] == pytest.approx(float(object_persistence(preds[:, 0], target[:, 0], masks)))
    assert scores["reset_reproducibility"] == pytest.approx(
        float(reset_reproducibility(preds[:, 0], second, target[:, 0])), abs=1e-6
    )
    assert scores["task_validity"] == pytest.approx(float(task_validity(task_pred, task_real)))
    assert scores["delta_psnr"] == pytest.approx(float(delta_psnr(preds, target)), abs=1e-4)


def test_scorecard_leaves_out_axes_whose_inputs_never_came():
    real = frames(2, 2, 3, 3, 8, 8)
    card = SimulatorScorecard()
    card.update(real, real)
    assert list(card.compute()) == ["controllability", "temporal_consistency", "psnr", "ssim", "delta_psnr"]
    card.reset()
    with pytest.raises(RuntimeError, match="before any update"):
        card.compute()


def test_scorecard_lines_up_episode_scores_of_a_second_pass_in_another_order():
    real = frames(4, 2, 3, 3, 8, 8, seed=8)
    second = real[:, 0].clone()
    second[1] = second[1].flip(-1)  # only episode 1 fails to reproduce
    card = SimulatorScorecard(episode_scores=True)
    for part in ([2, 3], [0, 1]):  # pass 1 in another order than probe order
        card.update(real[part], real[part], episode_index=torch.tensor(part))
    for part in ([0, 1], [2, 3]):
        card.update_reset(real[part, 0], second[part], real[part, 0], episode_index=torch.tensor(part))
    table = card.episode_scores()
    assert table["episode_index"].tolist() == [0, 1, 2, 3]
    assert table["controllability"].tolist() == [1.0, 1.0, 1.0, 1.0]
    reset = table["reset_reproducibility"]
    assert reset[1] < 1.0 and reset[[0, 2, 3]].tolist() == [1.0, 1.0, 1.0]


def test_metric_accepts_the_frames_device_and_dtype_of_its_inputs():
    real = frames(2, 2, 3, 3, 8, 8).double()
    metric = Controllability()
    metric.update(real, real)
    assert metric.compute().dtype == torch.float32
    half = frames(2, 3, 3, 8, 8).half()
    assert temporal_consistency(half, half) == 1.0
