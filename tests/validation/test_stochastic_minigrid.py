"""The stochastic defect suite in two real stochastic MiniGrid worlds, R = 4 probe takes and a held-out take.

Dynamic-Obstacles (the obstacles move at random) and DoorKey with sticky actions (with probability 0.25 the
previous action is played again). The checks are those of ``test_stochastic_worlds`` on the toy world.
"""

from __future__ import annotations

import pytest

pytest.importorskip("minigrid")

from simgate_tracking.probes import build_probe_set, sticky_actions  # noqa: E402
from simgate_tracking.probes.minigrid import (  # noqa: E402
    go_to_goal,
    minigrid_actions,
    minigrid_env_fn,
    minigrid_objects,
)
from tests.helpers.stochastic_defects import DEFECTS, judge, mild_noise, oracle, split_world  # noqa: E402

TAKES = 4
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
WORLDS = {
    "dynamic_obstacles": (lambda: minigrid_env_fn("MiniGrid-Dynamic-Obstacles-Random-5x5-v0"), 10),
    "sticky_doorkey": (lambda: sticky_actions(minigrid_env_fn("MiniGrid-DoorKey-5x5-v0"), probability=0.25), 12),
}


def build_world(name: str):
    """World ``name`` of WORLDS: 16 episodes of R = 4 probe takes, a held-out take and one more for unseeded draws."""
    make_env, horizon = WORLDS[name]
    probe = build_probe_set(
        make_env(),
        range(16),
        go_to_goal,
        num_counterfactual=2,
        horizon=horizon,
        size=(40, 40),
        action_encoder=minigrid_actions(6),
        mask_extractor=minigrid_objects,
        takes=TAKES + 2,
        name=name,
    )
    return split_world(probe, TAKES)


@pytest.fixture(scope="module", params=sorted(WORLDS))
def world(request):
    return build_world(request.param)


def test_held_out_take_passes_with_every_axis_at_least_0_8(world):
    result = judge(world, oracle(world))
    assert result.passed and min(result.scores.values()) >= 0.8, str(result)


def test_mild_noise_does_not_alarm(world):
    assert judge(world, mild_noise(world)).passed


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_fails_on_its_own_axis_and_falls_with_strength(world, defect):
    axis, make = DEFECTS[defect]
    results = [judge(world, make(world, strength)) for strength in STRENGTHS]
    assert not results[-1].passed, f"{defect}: {results[-1]}"
    axis = axis or results[-1].weakest_axis
    assert results[-1].weakest_axis == axis, f"{defect}: {results[-1]}"
    scores = [result.scores[axis] for result in results]
    assert all(a >= b - 1e-6 for a, b in zip(scores, scores[1:], strict=False)), (defect, scores)
    assert scores[0] - scores[-1] > 0.5, (defect, scores)
