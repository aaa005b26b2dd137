"""Print the stochastic defect suite's table for README: ``python -m tests.validation.stochastic_validation_table``.

Three stochastic worlds (the toy world's random distractor, MiniGrid Dynamic-Obstacles, MiniGrid DoorKey with
sticky actions), each a probe set of R = 4 real takes with a held-out take; every defect at four strengths.
"""

from __future__ import annotations

from simgate_tracking.toy import make_probe_set
from tests.helpers.stochastic_defects import DEFECTS, judge, mild_noise, oracle, split_world
from tests.validation.test_stochastic_minigrid import TAKES, WORLDS, build_world


def worlds() -> dict[str, object]:
    found = {
        "toy world, random distractor": split_world(
            make_probe_set(num_episodes=12, num_branches=3, horizon=10, seed=0, takes=TAKES + 2, stochastic=True),
            TAKES,
        )
    }
    found.update({name: build_world(name) for name in WORLDS})
    return found


def main() -> None:
    for name, world in worlds().items():
        held, mild = judge(world, oracle(world)), judge(world, mild_noise(world))
        verdicts = f"held-out take {'PASS' if held.passed else 'FAIL'}, mild noise {'PASS' if mild.passed else 'FAIL'}"
        print(f"\n{name}: {verdicts}")
        print("| axis | held-out take | reality's own score |\n|---|---|---|")
        for axis, score in held.scores.items():
            print(f"| {axis} | {score:.3f} | {held.real_baseline[axis]:.3f} |")
        print("\n| defect | its axis | weakest axis | verdict | its axis at strength .25 / .5 / .75 / 1 |")
        print("|---|---|---|---|---|")
        for defect, (axis, make) in DEFECTS.items():
            results = [judge(world, make(world, s)) for s in (0.25, 0.5, 0.75, 1.0)]
            own = axis or results[-1].weakest_axis
            scores = " / ".join(f"{r.scores[own]:.2f}" for r in results)
            verdict = "PASS" if results[-1].passed else "FAIL"
            print(f"| {defect} | {axis or 'several'} | {results[-1].weakest_axis} | {verdict} | {scores} |")


if __name__ == "__main__":
    main()
