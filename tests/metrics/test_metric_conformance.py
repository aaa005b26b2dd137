"""One battery over every metric class, as torchmetrics' own MetricTester runs it over each of its metrics.

forward against update, chunked against whole, merge_state, the state-dict round trip, pickle and clone, reset,
dtype, and a real 2-process sync on CPU (gloo). Every case feeds the same episodes in chunks of two.
"""

import pickle
import warnings

import pytest
import torch
from torchmetrics import MetricCollection

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

EPISODES, TAKES, WORLD_SIZE = 6, 3, 2
SCENE = make_scene(episodes=EPISODES, size=16, steps=5, seed=5)
MODEL = vanishes_after_occlusion(SCENE, 0.6)
FRAMES = MODEL.frames.clone()
FRAMES[::2, 1:] = FRAMES[::2, :1]  # and ignores the actions in every other episode
SECOND = MODEL.second.clone()
SECOND[1] = SECOND[1].flip(-1)  # one episode does not reproduce
# R real takes of every branch: reality's own randomness, a little different in every take
TAKE_NOISE = torch.randn((EPISODES, TAKES, *SCENE.targets.shape[1:]), generator=torch.Generator().manual_seed(9))
REAL_TAKES = (SCENE.targets.unsqueeze(1) + 0.03 * TAKE_NOISE).clamp(0, 1)
CHUNKS = torch.arange(EPISODES).split(2)

# name: (the metric, the update arguments of the episodes `i`)
CASES = {
    "controllability": (Controllability, lambda i: ((FRAMES[i], SCENE.targets[i]), {})),
    "controllability_takes": (
        lambda **kw: Controllability(num_takes=TAKES, **kw),
        lambda i: ((FRAMES[i], REAL_TAKES[i]), {}),
    ),
    "temporal_consistency": (TemporalConsistency, lambda i: ((FRAMES[i, 0], SCENE.targets[i, 0]), {})),
    "object_persistence": (
        ObjectPersistence,
        lambda i: ((FRAMES[i, 0], SCENE.targets[i, 0], SCENE.masks[i], SCENE.visible[i]), {}),
    ),
    "reset_reproducibility": (
        ResetReproducibility,
        lambda i: ((FRAMES[i, 0], SECOND[i], SCENE.targets[i, 0]), {}),
    ),
    "task_validity": (TaskValidity, lambda i: ((MODEL.success[i], SCENE.success[i]), {})),
    "task_validity_ranking": (
        lambda **kw: TaskValidity(mode="ranking", num_groups=4, **kw),
        lambda i: ((MODEL.returns[i], SCENE.returns[i], SCENE.groups[i]), {}),
    ),
    "visual_fidelity": (VisualFidelity, lambda i: ((FRAMES[i], SCENE.targets[i]), {})),
    "delta_psnr": (DeltaPSNR, lambda i: ((FRAMES[i], SCENE.targets[i]), {})),
    "scorecard": (
        lambda **kw: SimulatorScorecard(task_mode="ranking", num_groups=4, episode_scores=True, **kw),
        lambda i: (
            (FRAMES[i], SCENE.targets[i]),
            dict(
                second=SECOND[i],
                masks=SCENE.masks[i],
                visible=SCENE.visible[i],
                task_pred=MODEL.returns[i],
                task_real=SCENE.returns[i],
                groups=SCENE.groups[i],
                episode_index=i,
            ),
        ),
    ),
}
NAMES = tuple(CASES)


def fed(name, parts, metric=None):
    """The case's metric (a new one unless given) updated with each part of the episodes in turn."""
    make, arguments = CASES[name]
    metric = make() if metric is None else metric
    for part in parts:
        args, kwargs = arguments(part)
        metric.update(*args, **kwargs)
    return metric


def value(metric):
    """compute(), plus the per-episode table of a scorecard that keeps one (a `cat` state)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # states restored or merged without update(): torchmetrics warns, rightly
        out = metric.compute()
        if isinstance(metric, SimulatorScorecard):
            out = {**out, **{f"episodes/{k}": v for k, v in metric.episode_scores().items()}}
    return out


def assert_same(a, b, what=""):
    assert_tree_close(a, b, what, rtol=1e-5)


def whole(name):
    return value(fed(name, [torch.arange(EPISODES)]))


def test_the_cases_score_something_between_the_extremes():
    card = whole("scorecard")
    assert 0.05 < card["controllability"] < 0.95 and 0.05 < card["object_persistence"] < 0.95
    assert card["reset_reproducibility"] < 0.99 and 0.0 < whole("controllability_takes") < 0.99
    assert set(card) >= {"controllability", "temporal_consistency", "object_persistence", "task_validity"}


@pytest.mark.parametrize("name", NAMES)
def test_chunked_updates_equal_one_update_of_every_episode(name):
    assert_same(value(fed(name, CHUNKS)), whole(name), name)


@pytest.mark.parametrize("name", NAMES)
def test_forward_returns_each_batch_alone_and_accumulates_like_update(name):
    make, arguments = CASES[name]
    metric = make()
    for part in CHUNKS:
        args, kwargs = arguments(part)
        batch = metric(*args, **kwargs)
        assert_same(batch, fed(name, [part]).compute(), name)
    assert metric.update_count == len(CHUNKS)
    assert_same(value(metric), whole(name), name)


def test_scorecard_forward_syncing_every_step_accumulates_too():
    card = SimulatorScorecard(dist_sync_on_step=True)
    batches = [card(FRAMES[part], SCENE.targets[part]) for part in CHUNKS]
    assert batches[0]["controllability"] == pytest.approx(fed("controllability", CHUNKS[:1]).compute().item())
    assert card.update_count == len(CHUNKS)
    assert card.compute()["controllability"] == pytest.approx(whole("controllability").item(), abs=1e-6)


def test_scorecard_forward_in_a_metric_collection_scores_every_batch():
    collection = MetricCollection({"card": SimulatorScorecard(), "control": Controllability()})
    for part in CHUNKS:
        collection(FRAMES[part], SCENE.targets[part])
    scores = collection.compute()
    assert scores["controllability"] == pytest.approx(scores["control"].item(), abs=1e-6)
    assert scores["controllability"] == pytest.approx(whole("controllability").item(), abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_merge_state_adds_another_metrics_episodes(name):
    first, rest = fed(name, CHUNKS[:1]), fed(name, CHUNKS[1:])
    value(first)  # a cached value must not survive the merge
    first.merge_state(rest)
    assert_same(value(first), whole(name), name)
    empty = CASES[name][0]()
    empty.merge_state(fed(name, CHUNKS).metric_state)  # a dict of states, as torchmetrics takes it too
    assert_same(value(empty), whole(name), name)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_restores_every_state(name):
    metric = fed(name, CHUNKS[:2])
    assert metric.state_dict() == {}  # metric states are not persistent by default, as in torchmetrics
    metric.persistent(True)
    state = metric.state_dict()
    assert set(state) == set(metric.metric_state)
    restored = CASES[name][0]()
    restored.load_state_dict(state)
    assert_same(value(restored), value(metric), name)
    # both go on accumulating alike
    assert_same(value(fed(name, CHUNKS[2:], restored)), whole(name), name)


def test_scorecard_state_dict_holds_every_axis():
    card = fed("scorecard", CHUNKS)
    card.persistent(True)
    keys = set(card.state_dict())
    for axis in ("controllability", "object_persistence", "reset_reproducibility", "task_validity", "delta_psnr"):
        assert f"{axis}.total" in keys, axis
    assert {"axis_updates", "episode_index", "visual_fidelity.ssim_sum", "controllability.episodes"} <= keys


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_clone_keep_the_states_and_clones_are_independent(name):
    metric = fed(name, CHUNKS[:2])
    again = pickle.loads(pickle.dumps(metric))
    assert_same(value(again), value(metric), name)
    assert_same(value(fed(name, CHUNKS[2:], again)), whole(name), name)
    clone = metric.clone()
    fed(name, CHUNKS[2:], clone)
    assert_same(value(metric), value(fed(name, CHUNKS[:2])), name)  # the original did not move


@pytest.mark.parametrize("name", NAMES)
def test_reset_forgets_every_state(name):
    metric = fed(name, CHUNKS)
    metric.reset()
    assert not metric.update_called
    with warnings.catch_warnings(), pytest.raises(RuntimeError):
        warnings.simplefilter("ignore")
        metric.compute()
    assert_same(value(fed(name, CHUNKS, metric)), whole(name), name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_frames_in_other_dtypes_score_as_float32_frames(name, dtype):
    make, arguments = CASES[name]
    metric = make()
    for part in CHUNKS:
        args, kwargs = arguments(part)
        cast = [x.to(dtype) if x.is_floating_point() else x for x in args]
        metric.update(*cast, **{k: v.to(dtype) if v.is_floating_point() else v for k, v in kwargs.items()})
    expected, got = whole(name), value(metric)
    tolerance = 1e-6 if dtype == torch.float64 else 0.02
    for key in expected if isinstance(expected, dict) else [None]:
        a, b = (expected, got) if key is None else (expected[key], got[key])
        scale = 1.0 if key not in ("psnr", "delta_psnr") else 30.0  # dB
        assert torch.allclose(a.double(), b.double(), atol=tolerance * scale, equal_nan=True), (name, key, a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value_range", [(-1.0, 1.0), (0.0, 255.0)])
def test_a_declared_value_range_scores_as_unit_frames(name, value_range):
    low, high = value_range
    make, arguments = CASES[name]
    metric = make(value_range=value_range)
    for part in CHUNKS:
        args, kwargs = arguments(part)
        # every float frame (rollouts and real frames) in the declared range; outcomes and masks as they are
        frames = set() if name.startswith("task_validity") else {"preds", "target", "first", "second"}
        names = (
            ["preds", "target", "masks", "visible"]
            if name != "reset_reproducibility"
            else ["first", "second", "target"]
        )
        args = [
            low + (high - low) * x if n in frames and x.is_floating_point() else x
            for n, x in zip(names, args, strict=False)
        ]
        if "second" in kwargs:
            kwargs = {**kwargs, "second": low + (high - low) * kwargs["second"]}
        metric.update(*args, **kwargs)
    assert_same(value(metric), whole(name), name)


def test_a_bad_value_range_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="value_range"):
        Controllability(value_range=(1.0, -1.0))


@pytest.mark.parametrize("name", NAMES)
def test_set_dtype_casts_every_state_and_the_scores_stay(name):
    metric = CASES[name][0]()
    metric.set_dtype(torch.float64)
    states = [v for v in metric.metric_state.values() if isinstance(v, torch.Tensor)]
    assert states and all(state.dtype == torch.float64 for state in states)
    assert_same(value(fed(name, CHUNKS, metric)), whole(name), name)


# ----------------------------------------------------------------------------------- two processes
def _rank_results(rank):
    """On each rank: every case fed this rank's chunks (rank 0: chunks 0 and 2, rank 1: chunk 1), computed and
    forward's batch value, which stays this rank's own."""
    out = {}
    for name in NAMES:
        parts = CHUNKS[rank::WORLD_SIZE]
        out[name] = value(fed(name, parts))
        make, arguments = CASES[name]
        metric = make()
        args, kwargs = arguments(parts[0])
        out[f"{name}/forward"] = metric(*args, **kwargs)
    return out


@pytest.fixture(scope="module")
def synced():
    return run_on_ranks(_rank_results, world_size=WORLD_SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_two_processes_compute_what_one_process_computes(synced, name):
    expected = whole(name)
    for rank in range(WORLD_SIZE):
        assert_same(synced[rank][name], expected, f"rank {rank} {name}")
        # forward's value is the rank's own batch, unsynced: torchmetrics' default (dist_sync_on_step=False)
        own = fed(name, CHUNKS[rank::WORLD_SIZE][:1]).compute()
        assert_same(synced[rank][f"{name}/forward"], own, f"rank {rank} {name} forward")
