"""Real 2-process DDP on CPU (gloo): each rank scores its shard of the probe episodes; synced = one process."""

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
from tests.helpers.compare import assert_tree_close
from tests.helpers.defects import vanishes_after_occlusion
from tests.helpers.gloo import run_on_ranks
from tests.helpers.scenes import make_scene

WORLD_SIZE = 2
EPISODES = 7  # uneven shards: 4 and 3 episodes


def bundle():
    """A probe scene, a model that drops an object, a second pass that differs on one episode, a NaN rollout."""
    scene = make_scene(episodes=EPISODES, seed=3)
    preds = vanishes_after_occlusion(scene, 0.6)
    frames = preds.frames.clone()
    frames[5, 1, 3, 0, 4, 4] = float("nan")  # a counterfactual branch of episode 5 is broken
    second = preds.second.clone()
    second[2] = second[2].flip(-1)
    return scene, frames, second, preds


def score_all(indices):
    """Every metric class and a scorecard fed the given episodes, two at a time; returns computed values."""
    scene, frames, second, preds = bundle()
    metrics = {
        "controllability": Controllability(episode_scores=True),
        "temporal_consistency": TemporalConsistency(episode_scores=True),
        "object_persistence": ObjectPersistence(episode_scores=True),
        "reset_reproducibility": ResetReproducibility(episode_scores=True),
        "agreement": TaskValidity(),
        "ranking": TaskValidity(mode="ranking", num_groups=scene.config.groups),
        "visual_fidelity": VisualFidelity(),
        "delta_psnr": DeltaPSNR(),
    }
    card = SimulatorScorecard(task_mode="ranking", num_groups=scene.config.groups, episode_scores=True)
    for i in indices.split(2):
        p, y = frames[i], scene.targets[i]
        metrics["controllability"].update(p, y)
        metrics["temporal_consistency"].update(p[:, 0], y[:, 0])
        metrics["object_persistence"].update(p[:, 0], y[:, 0], scene.masks[i], scene.visible[i])
        metrics["reset_reproducibility"].update(p[:, 0], second[i], y[:, 0])
        metrics["agreement"].update(preds.success[i], scene.success[i])
        metrics["ranking"].update(preds.returns[i], scene.returns[i], scene.groups[i])
        metrics["visual_fidelity"].update(p, y)
        metrics["delta_psnr"].update(p, y)
        card.update(
            p,
            y,
            masks=scene.masks[i],
            visible=scene.visible[i],
            task_pred=preds.returns[i],
            task_real=scene.returns[i],
            groups=scene.groups[i],
            episode_index=i,
        )
        card.update_reset(p[:, 0], second[i], y[:, 0], episode_index=i)
    return metrics, card


def results(indices):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics, card = score_all(indices)
        out = {name: metric.compute() for name, metric in metrics.items()}
        out["scorecard"] = card.compute()
        out["scorecard_episodes"] = card.episode_scores()
        for name, metric in metrics.items():
            if getattr(metric, "keeps_episode_scores", False):
                out[f"{name}_episodes"] = metric.episode_scores()
    out["nan_warnings"] = sum("NaN or Inf" in str(w.message) for w in caught)
    return out


def _rank_results(rank):
    shard = torch.arange(rank, EPISODES, WORLD_SIZE)
    return results(shard)


@pytest.fixture(scope="module")
def synced():
    return run_on_ranks(_rank_results, world_size=WORLD_SIZE)


def test_two_processes_compute_what_one_process_computes(synced):
    single = results(torch.arange(EPISODES))
    # the gathered per-episode scores of a plain metric come rank by rank: rank 0's shard, then rank 1's
    gathered_order = torch.cat([torch.arange(r, EPISODES, WORLD_SIZE) for r in range(WORLD_SIZE)])
    for rank in range(WORLD_SIZE):
        for name, value in single.items():
            if name == "nan_warnings":
                continue
            expected = value[gathered_order] if name.endswith("_episodes") and name != "scorecard_episodes" else value
            assert_tree_close(synced[rank][name], expected, f"rank {rank} {name}")


def test_the_bundle_exercises_every_state(synced):
    single = results(torch.arange(EPISODES))
    assert single["controllability_episodes"][5] == 0.0  # the NaN rollout
    assert 0.0 < single["object_persistence"] < 0.9 and single["reset_reproducibility"] < 1.0
    assert set(single["scorecard"]) >= {
        "controllability",
        "object_persistence",
        "reset_reproducibility",
        "task_validity",
    }
    assert single["scorecard_episodes"]["episode_index"].tolist() == list(range(EPISODES))


def test_non_finite_rollout_warns_on_rank_zero_only(synced):
    assert synced[0]["nan_warnings"] >= 1
    assert synced[1]["nan_warnings"] == 0
