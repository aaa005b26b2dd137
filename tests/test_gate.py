"""SimulatorGate and GateResult: thresholds, strict >, weakest axis by margin, failing axes, JSON round trip."""

import json
import math

import pytest
import torch

from simgate_tracking import AXES, DEFAULT_THRESHOLD, GateResult, SimulatorGate

SEED_EXAMPLE = {
    "controllability": 0.71,
    "temporal_consistency": 0.83,
    "object_persistence": 0.64,
    "reset_reproducibility": 0.76,
}


def test_seed_example_names_object_persistence_and_fails():
    result = SimulatorGate(threshold=0.65).evaluate(SEED_EXAMPLE)
    assert {"weakest_axis": result.weakest_axis, "simulator_ok": result.passed} == {
        "weakest_axis": "object_persistence",
        "simulator_ok": False,
    }
    assert result.failing_axes == ("object_persistence",)
    assert result.min_axis == 0.64
    # the seed's own ten lines agree
    assert result.weakest_axis == min(SEED_EXAMPLE, key=SEED_EXAMPLE.get)
    assert result.passed == (min(SEED_EXAMPLE.values()) > 0.65)


def test_default_threshold_is_the_seeds():
    assert DEFAULT_THRESHOLD == 0.65
    assert SimulatorGate().evaluate(SEED_EXAMPLE).thresholds == dict.fromkeys(SEED_EXAMPLE, 0.65)


@pytest.mark.parametrize(("score", "passed"), [(0.65, False), (math.nextafter(0.65, 1.0), True), (0.6499, False)])
def test_pass_is_strictly_above_the_threshold(score, passed):
    result = SimulatorGate().evaluate({**SEED_EXAMPLE, "object_persistence": score})
    assert result.passed is passed
    assert ("object_persistence" in result.failing_axes) is not passed


def test_every_axis_above_passes():
    result = SimulatorGate().evaluate(dict.fromkeys(AXES, 0.9))
    assert result.passed and result.failing_axes == ()
    assert list(result.scores) == list(AXES)


def test_weakest_axis_is_the_smallest_margin_not_the_smallest_score():
    gate = SimulatorGate(threshold={"controllability": 0.9})
    result = gate.evaluate({"controllability": 0.92, "temporal_consistency": 0.7})
    assert result.weakest_axis == "controllability"
    assert result.margins == pytest.approx({"controllability": 0.02, "temporal_consistency": 0.05})
    assert result.thresholds == {"controllability": 0.9, "temporal_consistency": DEFAULT_THRESHOLD}
    assert result.passed


def test_per_axis_thresholds_and_default_for_the_rest():
    gate = SimulatorGate(threshold={"object_persistence": 0.5}, default_threshold=0.8)
    result = gate.evaluate(SEED_EXAMPLE)
    assert result.thresholds == {
        "controllability": 0.8,
        "temporal_consistency": 0.8,
        "object_persistence": 0.5,
        "reset_reproducibility": 0.8,
    }
    assert result.failing_axes == ("controllability", "reset_reproducibility")  # weakest first
    assert result.weakest_axis == "controllability"


def test_frame_quality_is_reported_beside_the_gate_unless_given_a_threshold():
    scores = {**SEED_EXAMPLE, "object_persistence": 0.9, "psnr": 18.0, "ssim": 0.4}
    result = SimulatorGate().evaluate(scores)
    assert result.passed and result.extras == {"psnr": 18.0, "ssim": 0.4}
    gated = SimulatorGate(threshold={"psnr": 25.0}).evaluate(scores)
    assert not gated.passed and gated.weakest_axis == "psnr" and gated.failing_axes == ("psnr",)
    assert "psnr" in gated.scores and gated.extras == {"ssim": 0.4}


def test_tensor_scores_and_non_finite_scores():
    scores = {name: torch.tensor(value) for name, value in SEED_EXAMPLE.items()}
    scores["temporal_consistency"] = torch.tensor(float("nan"))
    result = SimulatorGate().evaluate(scores)
    assert result.scores["temporal_consistency"] == 0.0
    assert result.weakest_axis == "temporal_consistency" and not result.passed
    assert isinstance(result.scores["controllability"], float)


def test_scores_without_any_axis_are_refused():
    with pytest.raises(
        ValueError, match=r"Expected scores for at least one of \('controllability'.* got keys \['psnr'\]"
    ):
        SimulatorGate().evaluate({"psnr": 30.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "`threshold` to be a float in [0, 1] but got 1.5"),
        ({"threshold": -0.1}, "`threshold` to be a float in [0, 1] but got -0.1"),
        ({"threshold": float("nan")}, "`threshold` to be a finite float but got nan"),
        ({"threshold": True}, "`threshold` to be a finite float but got True"),
        ({"threshold": "0.7"}, "`threshold` to be a finite float but got '0.7'"),
        ({"threshold": {"controllability": 2.0}}, "`controllability` to be a float in [0, 1] but got 2.0"),
        ({"threshold": {"psnr": float("inf")}}, "`psnr` to be a finite float but got inf"),
        ({"default_threshold": 1.2}, "`default_threshold` to be a float in [0, 1] but got 1.2"),
        ({"default_threshold": None}, "`default_threshold` to be a finite float but got None"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError) as info:
        SimulatorGate(**kwargs)
    assert message in str(info.value)


def test_result_round_trips_through_json():
    result = SimulatorGate(threshold={"psnr": 25.0}).evaluate({**SEED_EXAMPLE, "psnr": 31.5, "ssim": 0.9})
    text = result.to_json()
    assert json.loads(text) == result.to_dict()
    again = GateResult.from_json(text)
    assert again == result
    assert again.failing_axes == ("object_persistence",) and again.extras == {"ssim": 0.9}
    assert GateResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_from_dict_tolerates_a_result_without_extras():
    data = SimulatorGate().evaluate(SEED_EXAMPLE).to_dict()
    del data["extras"]
    assert GateResult.from_dict(data).extras == {}


def test_result_prints_the_verdict_and_the_weakest_axis():
    text = str(SimulatorGate().evaluate({**SEED_EXAMPLE, "psnr": 31.5}))
    assert text.splitlines()[0] == "simulator gate: FAIL (weakest axis: object_persistence)"
    assert "object_persistence        0.640  > 0.65  <- weakest" in text
    assert "psnr                     31.500  (not gated)" in text


def test_misspelled_axis_threshold_is_refused():
    with pytest.raises(ValueError, match="'controlability': did you mean 'controllability'"):
        SimulatorGate(threshold={"controlability": 0.7})
    assert SimulatorGate(threshold={"psnr": 25.0}).threshold_for("psnr") == 25.0


@pytest.mark.parametrize("key", ["", 3, None])
def test_a_threshold_keyed_by_anything_but_a_score_name_is_refused(key):
    with pytest.raises(ValueError, match="keys of `threshold` to be axis or score names"):
        SimulatorGate(threshold={key: 0.5})
