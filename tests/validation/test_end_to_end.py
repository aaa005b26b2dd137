"""Defects as (fake) world models scored through ``simgate_tracking.evaluate``: the real two-pass protocol.

The probe set is a real ``ProbeSet`` of a seeded scene; ``batch_size`` is smaller than the number of episodes, so
the second pass visits several batches in reverse order, as the rollout runner does for every user.
"""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from simgate_tracking import AXES, ProbeSet, evaluate
from tests.helpers.defects import ignores_actions, oracle, scorecard, vanishes_after_occlusion
from tests.helpers.scenes import judge_success, make_scene

BATCH_SIZE = 3  # 8 episodes: batches of 3, 3 and 2


class ReplayWorldModel:
    """A fake world model that answers each (reset, actions) query with the given futures of that probe branch.

    Args:
        probe: The probe set it is asked about.
        frames: (N, K+1, T, C, H, W) what it answers for every episode and branch.
        leak: How much of the last episode it rendered bleeds into the next call (a model that keeps state).
        lighting: Amplitude of a per-rollout lighting change drawn from ``rng``: ``"seeded"`` draws from the
            per-episode generators the protocol hands over, ``"global"`` from the global RNG, ``"private"`` from
            the model's own generator, ignoring the seed.
    """

    def __init__(self, probe, frames, leak=0.0, lighting=0.0, rng="seeded"):
        self.probe, self.frames, self.leak, self.lighting, self.rng = probe, frames, leak, lighting, rng
        self.state = None
        self.private = torch.Generator().manual_seed(1234)
        self.calls = []

    def _lookup(self, context, actions):
        same_reset = (context.flatten(1).unsqueeze(1) == self.probe.context.flatten(1).unsqueeze(0)).all(dim=2)
        episode = same_reset.float().argmax(dim=1)
        same_actions = (actions.unsqueeze(1) == self.probe.actions[episode]).flatten(2).all(dim=2)
        return episode, same_actions.float().argmax(dim=1)

    def _noise(self, count, generator):
        if self.rng == "seeded":
            coarse = torch.stack([torch.randn(3, 4, 4, generator=g) for g in generator])
        else:
            coarse = torch.randn(count, 3, 4, 4, generator=self.private if self.rng == "private" else None)
        return F.interpolate(coarse, size=self.frames.shape[-2:], mode="bilinear", align_corners=False).unsqueeze(1)

    def rollout(self, context, actions, generator=None):
        episode, branch = self._lookup(context, actions)
        self.calls.append(episode.tolist())
        out = self.frames[episode, branch].clone()
        if self.leak and self.state is not None:
            out = (1 - self.leak) * out + self.leak * self.state
        self.state = out[-1]
        if self.lighting:
            out = out + self.lighting * self._noise(len(out), generator)
        return out.clamp(0.0, 1.0)


@pytest.fixture(scope="module")
def scene():
    return make_scene()


@pytest.fixture(scope="module")
def probe(scene):
    return scene.probe_set(task="success")


def _evaluate(model, probe):
    return evaluate(model.rollout, probe, task_fn=judge_success, batch_size=BATCH_SIZE)


def test_protocol_second_pass_visits_the_batches_in_reverse(scene, probe):
    model = ReplayWorldModel(probe, scene.targets)
    _evaluate(model, probe)
    first = [[0, 1, 2], [0, 0, 1, 1, 2, 2], [3, 4, 5], [3, 3, 4, 4, 5, 5], [6, 7], [6, 6, 7, 7]]
    assert model.calls == first + [[6, 7], [3, 4, 5], [0, 1, 2]]


@pytest.mark.parametrize(
    ("defect", "axis"), [("oracle", None), ("ignores_actions", "controllability"), ("vanishes", "object_persistence")]
)
def test_deterministic_model_scores_as_the_direct_metrics_say(scene, probe, defect, axis):
    make = {"oracle": oracle, "ignores_actions": ignores_actions, "vanishes": vanishes_after_occlusion}[defect]
    preds = make(scene, 1.0)
    result = _evaluate(ReplayWorldModel(probe, preds.frames), probe)
    direct = scorecard(scene, preds)
    for name in (*AXES, "psnr", "ssim", "delta_psnr"):
        value = result.scores[name] if name in AXES else result.extras[name]
        assert value == pytest.approx(direct[name], abs=1e-5), name
    if axis is None:
        assert result.passed and min(result.scores.values()) >= 0.99
    else:
        assert result.weakest_axis == axis and not result.passed


def test_model_that_keeps_state_between_rollouts_fails_reset_reproducibility(scene, probe):
    # state carried across calls also leaks between the reference and counterfactual calls: several axes fail
    result = _evaluate(ReplayWorldModel(probe, scene.targets, leak=0.5), probe)
    assert "reset_reproducibility" in result.failing_axes, result.scores
    assert result.scores["reset_reproducibility"] == min(result.scores[a] for a in AXES if a != "task_validity")


def test_stochastic_model_that_draws_from_its_episode_generators_reproduces_exactly(scene, probe):
    result = _evaluate(ReplayWorldModel(probe, scene.targets, lighting=0.08, rng="seeded"), probe)
    assert result.scores["reset_reproducibility"] == 1.0
    assert result.passed, result.scores


def test_stochastic_model_that_draws_from_the_global_rng_reproduces_exactly(scene, probe):
    # the reference and counterfactual calls draw different global noise, so only reset is exact here
    result = _evaluate(ReplayWorldModel(probe, scene.targets, lighting=0.08, rng="global"), probe)
    assert result.scores["reset_reproducibility"] == 1.0


def test_stochastic_model_that_ignores_the_seed_fails_reset_reproducibility(scene, probe):
    result = _evaluate(ReplayWorldModel(probe, scene.targets, lighting=0.08, rng="private"), probe)
    assert result.weakest_axis == "reset_reproducibility", result.scores
    assert not result.passed


def test_saved_and_loaded_probe_set_scores_the_same(scene, probe, tmp_path):
    probe.save(tmp_path / "probe.pt")
    loaded = ProbeSet.load(tmp_path / "probe.pt")
    model = ReplayWorldModel(loaded, vanishes_after_occlusion(scene, 0.5).frames)
    assert _evaluate(model, loaded).to_dict() == _evaluate(ReplayWorldModel(probe, model.frames), probe).to_dict()
