"""Reality's side of object persistence is kept per episode: scoring the same takes again gives the same numbers."""

import importlib

import pytest
import torch

from benchmarks.bundle import Size, make_takes_bundle
from simgate_tracking.functional import object_persistence_takes as takes_module
from simgate_tracking.functional._reality_cache import RealityCache
from simgate_tracking.functional.object_persistence_takes import _object_persistence_takes_update
from simgate_tracking.metrics import ObjectPersistence


def _bundle(seed=0, episodes=3):
    b = make_takes_bundle(Size(episodes=episodes, steps=6, height=32, width=32), 3, seed=seed)
    return b.preds[:, 0], b.target[:, :, 0].contiguous(), b.masks, b.visible


def _score(args, cache):
    takes_module.REALITY = cache
    return _object_persistence_takes_update(*args)


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch):
    monkeypatch.setattr(takes_module, "REALITY", RealityCache())


def _same(first, second):
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_warm_cache_scores_exactly_as_no_cache():
    args = _bundle()
    cold = _score(args, RealityCache(max_episodes=0))  # keeps nothing: every call computes everything
    cache = RealityCache()
    first, again = _score(args, cache), _score(args, cache)
    assert len(cache) == 3 and cache.nbytes > 0  # every episode kept, with its boxes and spectra
    _same(cold, first)
    _same(cold, again)


def test_the_cached_reality_is_what_a_second_call_reads():
    args = _bundle()
    cache = RealityCache()
    _score(args, cache)
    for key in list(cache._kept):
        kept, nbytes = cache._kept[key]
        cache._kept[key] = (kept._replace(held_out=torch.full_like(kept.held_out, 0.25)), nbytes)
    assert torch.equal(_score(args, cache)[3], torch.full((3, 3), 0.25))


@pytest.mark.parametrize("change", ["frame", "mask", "visible"])
def test_a_changed_take_is_scored_afresh(change):
    preds, target, masks, visible = _bundle()
    cache = RealityCache()
    _score((preds, target, masks, visible), cache)
    target, masks, visible = target.clone(), masks.clone(), visible.clone()
    if change == "frame":
        target[1, 2, 3] = (target[1, 2, 3] + 0.3).clamp(0, 1)
    elif change == "mask":
        masks[1, 2, 3, -1] = torch.roll(masks[1, 2, 3, -1], 3, dims=-1)
    else:
        visible[1, 2, 3, -1] = ~visible[1, 2, 3, -1]
    changed = (preds, target, masks, visible)
    _same(_score(changed, RealityCache(max_episodes=0)), _score(changed, cache))
    assert len(cache) == 4  # the changed episode has a new entry; the other two were found


def test_other_settings_are_other_entries():
    args = _bundle()
    cache = RealityCache()
    _score(args, cache)
    takes_module.REALITY = cache
    narrow = _object_persistence_takes_update(*args, max_shift=2)
    assert len(cache) == 6
    takes_module.REALITY = RealityCache(max_episodes=0)
    _same(_object_persistence_takes_update(*args, max_shift=2), narrow)


def test_the_memory_budget_keeps_small_parts_only_and_scores_the_same():
    args = _bundle()
    cold = _score(args, RealityCache(max_episodes=0))
    tight = RealityCache(max_bytes=1)
    _score(args, tight)
    assert len(tight) == 3 and tight.nbytes == 0
    assert all(kept.boxes is None and kept.templates is None for kept, _ in tight._kept.values())
    _same(cold, _score(args, tight))


def test_the_budget_keeps_the_first_episodes_parts_instead_of_pushing_them_out():
    args = _bundle()
    probe = RealityCache()
    _score(args, probe)
    per_episode = [nbytes for _, nbytes in probe._kept.values()]
    cache = RealityCache(max_bytes=per_episode[0] + per_episode[1] // 2)
    _score(args, cache)
    kept = [nbytes for _, nbytes in cache._kept.values()]
    assert kept[0] == per_episode[0] and cache.nbytes <= cache.max_bytes
    _score(args, cache)  # the same order again: the first episode keeps its parts
    assert next(iter(cache._kept.values()))[1] == per_episode[0]


def test_the_least_recently_used_episode_goes_first():
    cache = RealityCache(max_episodes=2)
    first, second = _bundle(seed=1, episodes=2), _bundle(seed=2, episodes=2)
    _score(first, cache)
    _score(second, cache)
    assert len(cache) == 2
    _same(_score(first, RealityCache(max_episodes=0)), _score(first, cache))


def test_the_metric_scores_a_probe_set_the_same_at_every_check():
    preds, target, masks, visible = _bundle(episodes=4)
    scores = []
    for _ in range(3):  # a gate check builds a new metric each time; reality is kept across them
        metric = ObjectPersistence(num_takes=3)
        metric.update(preds, target, masks, visible)
        scores.append((metric.compute(), metric.real_baseline()))
    assert scores[0] == scores[1] == scores[2]
    assert len(takes_module.REALITY) == 4


def test_reset_reproducibility_keeps_reality_s_scale_per_episode(monkeypatch):
    reset_module = importlib.import_module("simgate_tracking.functional.reset_reproducibility")
    _reset_takes_update = reset_module._reset_takes_update
    monkeypatch.setattr(reset_module, "SCALES", RealityCache())
    preds, target, _, _ = _bundle(episodes=3)
    second = preds.clone()
    second[1] += 0.05
    cold = reset_module._takes_scale(target)
    first, again = _reset_takes_update(preds, second, target), _reset_takes_update(preds, second, target)
    assert len(reset_module.SCALES) == 3
    _same(first, again)
    kept = torch.stack([reset_module.SCALES.get(key) for key in list(reset_module.SCALES._kept)])
    torch.testing.assert_close(kept, cold, rtol=0, atol=0)
    changed = target.clone()
    changed[2, 1] = changed[2, 0]  # two takes now agree: reality's spread, and so the scale, changes
    fresh = reset_module._takes_scale(changed)
    assert not torch.equal(fresh[2], cold[2])
    _reset_takes_update(preds, second, changed)
    assert len(reset_module.SCALES) == 4
