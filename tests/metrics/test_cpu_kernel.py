"""The scorecard's one-pass CPU kernel gives the tensor path's scores, on every input form, and falls back cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
import torch

from simgate_tracking.functional import _fused
from simgate_tracking.metrics import SimulatorScorecard
from tests.helpers.defects import MILD, MULTI_AXIS, SINGLE_AXIS, oracle, predictions
from tests.helpers.scenes import make_scene

DEFECTS = {"oracle": oracle, **{name: defect for name, (_, defect) in SINGLE_AXIS.items()}, **MULTI_AXIS, **MILD}

pytestmark = pytest.mark.skipif(_fused.compiled_kernel() is None, reason="numba is not installed")

RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture(autouse=True)
def kernel_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """These bundles are small: below the size from which the scorecard takes the kernel by default."""
    monkeypatch.setattr(_fused, "KERNEL_MIN_VALUES", 0)


def _bundle(seed: int, shape: tuple[int, ...], objects: int = 3) -> dict[str, torch.Tensor]:
    """Noisy rollouts of random real frames, a noisier second pass, and random rectangular object masks."""
    g = torch.Generator().manual_seed(seed)
    b, _, t, _, h, w = shape
    real = torch.rand(shape, generator=g)
    model = (real + 0.05 * torch.randn(shape, generator=g)).clamp(0, 1)
    second = (model[:, 0] + 0.02 * torch.randn(model[:, 0].shape, generator=g)).clamp(0, 1)
    masks = torch.zeros(b, t, objects, h, w, dtype=torch.bool)
    for n in range(objects):
        top, left = torch.randint(0, h - 2, (b, t), generator=g), torch.randint(0, w - 2, (b, t), generator=g)
        for e in range(b):
            for s in range(t):
                y0, x0 = int(top[e, s]), int(left[e, s])
                masks[e, s, n, y0 : y0 + 3 + n, x0 : x0 + 2 + n] = True
    masks[:, :, 0, :, :] &= torch.rand(b, t, 1, 1, generator=g) > 0.2  # object 0 is hidden at some steps
    return {"preds": model, "target": real, "second": second, "masks": masks, "visible": masks.flatten(3).any(3)}


def _scores(card: SimulatorScorecard) -> dict[str, torch.Tensor]:
    return {name: value.double() for name, value in card.compute().items()}


def _both(update, episode_scores: bool = False) -> tuple[SimulatorScorecard, SimulatorScorecard]:
    cards = []
    for cpu_kernel in (True, False):
        card = SimulatorScorecard(episode_scores=episode_scores, cpu_kernel=cpu_kernel)
        update(card)
        cards.append(card)
    return cards[0], cards[1]


def _assert_same(kernel: SimulatorScorecard, tensors: SimulatorScorecard) -> None:
    got, want = _scores(kernel), _scores(tensors)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=RTOL, atol=ATOL, msg=name)


@pytest.mark.parametrize(
    "shape",
    [
        (3, 3, 5, 3, 17, 23),  # pixels not a multiple of the block
        (2, 2, 2, 1, 40, 40),  # one counterfactual branch, two steps, one channel, several blocks
        (4, 4, 6, 3, 8, 8),  # three counterfactual branches, a block larger than a frame
    ],
)
def test_kernel_matches_the_tensor_path(shape: tuple[int, ...]) -> None:
    b = _bundle(0, shape)
    kernel, tensors = _both(
        lambda card: card.update(b["preds"], b["target"], second=b["second"], masks=b["masks"], visible=b["visible"]),
        episode_scores=True,
    )
    _assert_same(kernel, tensors)
    for name, scores in tensors.episode_scores().items():
        torch.testing.assert_close(kernel.episode_scores()[name].double(), scores.double(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_kernel_matches_the_tensor_path_on_every_defect(defect: str) -> None:
    scene = make_scene(episodes=4, steps=6, seed=5)
    preds = DEFECTS[defect](scene, 1.0)
    kernel, tensors = _both(
        lambda card: card.update(
            preds.frames, scene.targets, second=preds.second, masks=scene.masks, visible=scene.visible
        )
    )
    _assert_same(kernel, tensors)


def test_kernel_takes_the_pair_form_float32_uint8_and_half_precision() -> None:
    b = _bundle(1, (3, 3, 4, 3, 20, 20))
    as_uint8 = {name: (b[name] * 255).round().to(torch.uint8) for name in ("preds", "target", "second")}
    as_float32 = {name: b[name] for name in ("preds", "target", "second")}
    for frames in (as_float32, as_uint8, {name: b[name].half() for name in ("preds", "target", "second")}):
        preds = frames["preds"]
        pair = (preds[:, 0].contiguous(), preds[:, 1:].contiguous())
        kernel, tensors = _both(
            lambda card, p=pair, f=frames: card.update(p, f["target"], second=f["second"], masks=b["masks"])
        )
        _assert_same(kernel, tensors)


def test_kernel_reset_pass_matches_on_strided_inputs() -> None:
    """``update_reset`` as the rollout runner calls it: the target is a strided view of every branch."""
    b = _bundle(2, (4, 3, 5, 3, 18, 18))
    target = b["target"][:, 0]
    assert not target.is_contiguous()
    kernel, tensors = _both(lambda card: card.update_reset(b["preds"][:, 0], b["second"], target))
    got, want = kernel.reset_reproducibility.compute(), tensors.reset_reproducibility.compute()
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)


def test_kernel_scores_non_finite_rollouts_0_like_the_tensor_path() -> None:
    b = _bundle(3, (4, 3, 5, 3, 16, 16))
    preds, second = b["preds"].clone(), b["second"].clone()
    preds[1, 0, 2, 1, 3, 3] = float("nan")  # the reference branch: every axis of episode 1
    preds[2, 2, 1, 0, 0, 0] = float("inf")  # a counterfactual branch: controllability of episode 2
    second[3, 4, 2, 7, 7] = float("nan")  # the second pass: reset of episode 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel, tensors = _both(
            lambda card: card.update(preds, b["target"], second=second, masks=b["masks"]), episode_scores=True
        )
        _assert_same(kernel, tensors)
    scores = kernel.episode_scores()
    assert float(scores["temporal_consistency"][1]) == 0.0 and float(scores["object_persistence"][1]) == 0.0
    assert float(scores["controllability"][2]) == 0.0 and float(scores["reset_reproducibility"][3]) == 0.0
    for axis in ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility"):
        assert getattr(kernel, axis).nonfinite == getattr(tensors, axis).nonfinite, axis


def test_finite_rollouts_that_overflow_float32_are_flagged_on_both_paths() -> None:
    """Energies of huge but finite output overflow float32 on the tensor path: the kernel flags the same episodes."""
    b = _bundle(11, (3, 3, 4, 3, 16, 16))
    preds, second = b["preds"].clone(), b["second"].clone()
    preds[0, 0] *= 1e18  # every reference frame of episode 0
    second[1] *= 1e18  # the second pass of episode 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel, tensors = _both(lambda card: card.update(preds, b["target"], second=second, masks=b["masks"]))
        _assert_same(kernel, tensors)
    for axis in ("controllability", "temporal_consistency", "object_persistence", "reset_reproducibility"):
        assert int(getattr(kernel, axis).nonfinite) == int(getattr(tensors, axis).nonfinite) > 0, axis


def test_kernel_runs_under_inference_mode_and_on_tensors_that_require_grad() -> None:
    b = _bundle(4, (2, 3, 4, 3, 12, 12))
    with torch.inference_mode():
        inference = SimulatorScorecard()
        inference.update(b["preds"].clone(), b["target"].clone(), second=b["second"].clone(), masks=b["masks"])
    graph = SimulatorScorecard()
    graph.update(b["preds"].clone().requires_grad_(), b["target"], second=b["second"], masks=b["masks"])
    _assert_same(inference, graph)


def test_kernel_sums_do_not_depend_on_the_thread_count() -> None:
    b = _bundle(5, (8, 3, 6, 3, 64, 64))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            card = SimulatorScorecard()
            card.update(b["preds"], b["target"], second=b["second"], masks=b["masks"])
            results.append(_scores(card))
    finally:
        torch.set_num_threads(threads)
    assert results[0] == results[1] == results[2]  # every item's sums land in their own slot: no race, same order


def test_small_updates_take_the_tensor_path_and_large_ones_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fused, "KERNEL_MIN_VALUES", 2**22)
    small, large = torch.rand(2, 3, 4, 3, 32, 32), torch.rand(4, 3, 8, 3, 128, 128)
    assert not _fused.kernel_takes(small, small)  # 147,456 values
    assert _fused.kernel_takes(large, large)  # 9,437,184 values
    assert not _fused.kernel_takes(large.double(), large.double())  # float64 frames: tensor path
    assert not _fused.kernel_takes(large, large.to("meta"))  # another device: tensor path


def test_without_numba_the_scorecard_takes_the_tensor_path(monkeypatch: pytest.MonkeyPatch) -> None:
    b = _bundle(6, (3, 3, 4, 3, 16, 16))
    kernel = SimulatorScorecard()
    kernel.update(b["preds"], b["target"], second=b["second"], masks=b["masks"])
    monkeypatch.setitem(_fused._kernel, "fn", None)  # as when numba cannot be imported
    fallback = SimulatorScorecard()
    fallback.update(b["preds"], b["target"], second=b["second"], masks=b["masks"])
    _assert_same(kernel, fallback)


def test_the_kernel_can_be_switched_off_for_the_whole_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMGATE_CPU_KERNEL", "0")
    assert _fused.compiled_kernel() is None
    b = _bundle(10, (2, 3, 4, 3, 16, 16))
    assert _fused.rollout_sums(b["preds"], b["target"]) is None
    monkeypatch.setenv("SIMGATE_CPU_KERNEL", "1")
    assert _fused.compiled_kernel() is not None


def test_numba_with_its_jit_disabled_is_not_used() -> None:
    """``NUMBA_DISABLE_JIT=1`` (a numba debugging switch) would run the kernel as plain Python: far too slow."""
    code = (
        "from simgate_tracking.functional._fused import compiled_kernel;"
        "import simgate_tracking.functional._fused_kernel as k, numba.core.dispatcher as d;"
        "assert not isinstance(k.fused_sums, d.Dispatcher);"  # what the switch does to numba
        "assert compiled_kernel() is None"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_a_kernel_that_fails_warns_once_and_the_tensor_path_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("Failed in nopython mode pipeline")

    b = _bundle(7, (3, 3, 4, 3, 16, 16))
    reference = SimulatorScorecard(cpu_kernel=False)
    reference.update(b["preds"], b["target"], second=b["second"], masks=b["masks"])
    monkeypatch.setitem(_fused._kernel, "fn", broken)
    card = SimulatorScorecard()
    with pytest.warns(RuntimeWarning, match="compiled CPU kernel failed.*nopython mode"):
        card.update(b["preds"], b["target"], second=b["second"], masks=b["masks"])
    assert _fused.compiled_kernel() is None  # not tried again in this process
    _assert_same(card, reference)


def test_a_kernel_numba_cannot_cache_still_runs_and_says_so(tmp_path) -> None:
    """Where no cache directory is writable, numba compiles in every process: slower to start, never wrong."""
    (tmp_path / "nowhere.py").write_text(
        "from numba.core.caching import _CacheLocator\n"
        "class Nowhere(_CacheLocator):\n"
        "    @classmethod\n"
        "    def from_function(cls, py_func, py_file):\n"
        "        return None\n"
    )
    code = (
        "import warnings, torch\n"
        "from simgate_tracking.functional import _fused\n"
        "_fused.KERNEL_MIN_VALUES = 0\n"
        "from simgate_tracking.metrics import SimulatorScorecard\n"
        "real = torch.rand(2, 3, 4, 3, 16, 16)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    card = SimulatorScorecard()\n"
        "    card.update(real, real, second=real[:, 0])\n"
        "assert _fused.compiled_kernel() is not None\n"
        "assert float(card.compute()['controllability']) == 1.0\n"
        "print([str(w.message) for w in caught if 'cannot be cached' in str(w.message)])\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "NUMBA_CACHE_LOCATOR_CLASSES": "nowhere.Nowhere",
    }
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "NUMBA_CACHE_DIR" in proc.stdout  # the warning names the way out


def test_bad_input_still_gets_the_tensor_paths_error() -> None:
    b = _bundle(8, (2, 3, 4, 3, 12, 12))
    card = SimulatorScorecard()
    with pytest.raises(ValueError, match="`masks`"):
        card.update(b["preds"], b["target"], masks=b["masks"][:, :, :, :-1])
    with pytest.raises(ValueError, match="`second`"):
        card.update(b["preds"], b["target"], second=b["second"][:, 1:])
    big = _bundle(9, (6, 3, 8, 3, 64, 64), objects=1)  # scored in chunks of a few episodes
    with pytest.raises(ValueError, match="`second`"):  # one episode too many is not dropped silently
        card.update(big["preds"], big["target"], second=torch.cat([big["second"], big["second"][:1]]))
    with pytest.raises(ValueError, match="T >= 2"):
        card.update(b["preds"][:, :, :1], b["target"][:, :, :1])
    with pytest.raises(TypeError):  # as on the tensor path
        card.update_reset(b["preds"][:, 0], None, b["target"][:, 0])


def test_predictions_helper_is_what_the_validation_suite_scores() -> None:
    """The defect suite runs through the scorecard, so on CPU it validates the kernel path."""
    scene = make_scene(episodes=2, steps=4, seed=1)
    preds = predictions(scene.targets.clone())
    card = SimulatorScorecard()
    card.update(preds.frames, scene.targets, second=preds.second, masks=scene.masks, visible=scene.visible)
    assert all(float(card.compute()[axis]) > 0.99 for axis in ("controllability", "object_persistence"))


def test_without_numba_installed_the_scorecard_scores_silently(tmp_path) -> None:
    """numba is an extra: a process where it cannot be imported scores on the tensor path, with no warning."""
    import subprocess
    import sys

    code = (
        "import sys, warnings; sys.modules['numba'] = None;"  # an import of numba now raises ImportError
        "warnings.simplefilter('error');"
        "import torch; from simgate_tracking.functional import _fused; _fused.KERNEL_MIN_VALUES = 0;"
        "from simgate_tracking.metrics import SimulatorScorecard;"
        "real = torch.rand(2, 2, 3, 3, 8, 8); card = SimulatorScorecard(); card.update(real, real, second=real[:, 0]);"
        "assert _fused.compiled_kernel() is None and float(card.compute()['controllability']) == 1.0; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
