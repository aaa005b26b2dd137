"""The README's validation table: every defect on the base test scene, judged by the gate as a user would.

Run from the repository root: ``.venv/bin/python -m tests.validation.validation_table``. It prints markdown.
"""

from __future__ import annotations

import torch

from simgate_tracking.metrics import ObjectPersistence
from tests.helpers.defects import MILD, MULTI_AXIS, SINGLE_AXIS, blur, judge, oracle, predictions, score, task_for
from tests.helpers.scenes import SceneConfig, make_scene

STRENGTHS = (0.25, 0.5, 0.75, 1.0)


def defect_rows(config: SceneConfig) -> list[str]:
    """One markdown row per defect at full strength, with its own axis at growing strength."""
    scene = make_scene(config)
    header = (
        "| defect | its axis | its score | weakest axis | verdict | PSNR dB | its axis at strength .25 / .5 / .75 / 1 |"
    )
    rows = [header, "|---|---|---|---|---|---|---|"]
    cases = [("oracle (model = reality)", None, oracle, "success")]
    cases += [(name.replace("_", " "), None, make, "success") for name, make in MILD.items()]
    cases += [(name.replace("_", " "), axis, make, task_for(name)) for name, (axis, make) in SINGLE_AXIS.items()]
    cases += [(name.replace("_", " "), "several", make, "success") for name, make in MULTI_AXIS.items()]
    for name, axis, make, task in cases:
        result = judge(scene, make(scene, 1.0), task)
        own = axis if axis in result.scores else result.weakest_axis
        trend = " / ".join(f"{score(scene, make(scene, s), task)[own]:.2f}" for s in STRENGTHS)
        verdict = "pass" if result.passed else "FAIL"
        rows.append(
            f"| {name} | {axis or '-'} | {result.scores[own]:.3f} | {result.weakest_axis} | {verdict} | "
            f"{result.extras['psnr']:.1f} | {trend if axis else '-'} |"
        )
    return rows


def blur_rows(config: SceneConfig) -> list[str]:
    """Object persistence of blurred futures: the mild defect that partly visible objects made alarm."""
    scene = make_scene(config)
    rows = ["| blur of the real futures | object_persistence |", "|---|---|"]
    box = torch.nn.functional.avg_pool2d(
        torch.nn.functional.pad(scene.targets.flatten(0, 3).unsqueeze(1), (1, 1, 1, 1), mode="replicate"), 3, 1
    ).view_as(scene.targets)
    for name, frames in [(f"Gaussian 3x3, sigma {s}", blur(scene.targets, s)) for s in (0.5, 0.7, 1.0)] + [
        ("box 3x3", box)
    ]:
        metric = ObjectPersistence()
        metric.update(predictions(frames).frames[:, 0], scene.targets[:, 0], scene.masks, scene.visible)
        rows.append(f"| {name} | {float(metric.compute()):.3f} |")
    return rows


if __name__ == "__main__":
    torch.set_num_threads(1)
    base = SceneConfig()
    print(f"Scene: {base}\n")
    print("\n".join(defect_rows(base)))
    print()
    print("\n".join(blur_rows(base)))
