"""The CPU fast paths give the same scores as the direct formulas, whatever matmul precision the process asked for."""

from __future__ import annotations

import pytest
import torch

from simgate_tracking.functional import _fused
from simgate_tracking.functional._distances import _gram_distances, _pairwise_distances
from simgate_tracking.functional.object_persistence import object_persistence
from simgate_tracking.metrics import SimulatorScorecard
from tests.helpers.defects import vanishes_after_occlusion
from tests.helpers.scenes import make_scene


def _rollouts(seed: int, shape: tuple[int, ...] = (3, 3, 6, 3, 24, 24)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(shape, generator=g)
    model = (real + 0.01 * torch.randn(shape, generator=g)).clamp(0, 1)  # a near-perfect model: small distances
    return model, real


@pytest.mark.parametrize("seed", (0, 1))
def test_gram_distances_match_pdist(seed: int) -> None:
    model, real = _rollouts(seed)
    model[:, 2] = model[:, 1]  # two identical branches: a distance of exactly 0 must come out as 0
    direct, gram = _pairwise_distances(model, real), _gram_distances(model, real)
    torch.testing.assert_close(gram, direct, rtol=1e-4, atol=1e-3)
    assert torch.equal(gram.diagonal(dim1=1, dim2=2), torch.zeros(3, 6))
    assert gram[:, 1, 2].abs().max() < 1e-3 * direct[:, 0, 1].min()


def test_gram_distances_flag_nan_rollouts() -> None:
    model, real = _rollouts(2)
    model[1, 2, 3, 0, 5, 5] = float("nan")
    distances = _gram_distances(model, real)
    assert distances[0].isfinite().all() and not distances[1, :3, :3].isfinite().all()


@pytest.mark.parametrize("cpu_kernel", (False, True))
@pytest.mark.parametrize("precision", ("high", "medium"))
def test_scores_ignore_the_process_matmul_precision(
    precision: str, cpu_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fused, "KERNEL_MIN_VALUES", 0)  # a small scene: the kernel only where asked for
    scene = make_scene(episodes=4, steps=6, seed=3)
    noise = 0.02 * torch.randn(scene.targets.shape, generator=torch.Generator().manual_seed(0))
    noisy = (scene.targets + noise).clamp(0, 1)

    def scores() -> dict[str, float]:
        card = SimulatorScorecard(cpu_kernel=cpu_kernel)
        card.update(noisy, scene.targets, second=noisy[:, 0], masks=scene.masks, visible=scene.visible)
        return {name: float(value) for name, value in card.compute().items()}

    exact = scores()
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        relaxed = scores()
        assert torch.get_float32_matmul_precision() == precision  # the setting is the user's: restored after use
    finally:
        torch.set_float32_matmul_precision(previous)
    assert relaxed == exact


def test_object_persistence_is_exact_for_the_oracle_and_zero_for_a_vanished_object() -> None:
    scene = make_scene(episodes=4, seed=4)
    reference = scene.targets[:, 0]
    assert object_persistence(reference, reference, scene.masks, scene.visible) == 1.0
    vanished = vanishes_after_occlusion(scene, 1.0).frames[:, 0]
    assert object_persistence(vanished, reference, scene.masks, scene.visible) < 0.05
