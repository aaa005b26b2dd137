"""Draw the object masks of a Pusher and a highway-env probe set, outlined on their rollouts, into docs/img/.

    MUJOCO_GL=egl python docs/mask_pictures.py     # writes docs/img/pusher_masks.png and docs/img/highway_masks.png

Each picture is one reference branch of a probe set built by ``build_probe_set``: the frames it stores and the
masks it stores, one colour per mask slot (an object keeps its slot, so a colour is an identity). A slot that is not
visible at a step is not drawn: Pusher's object vanishes while the arm passes over it and comes back after.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from simgate_tracking.probes import build_probe_set
from simgate_tracking.probes.highway import highway_env_fn, highway_objects, no_crash
from simgate_tracking.probes.mujoco import mujoco_env_fn, mujoco_objects

IMG = Path(__file__).resolve().parent / "img"
PALETTE = [  # one colour per mask slot, none of them a colour the environments draw with
    (255, 0, 255),
    (255, 220, 0),
    (255, 120, 0),
    (255, 255, 255),
    (0, 0, 0),
    (150, 0, 255),
    (255, 0, 0),
    (0, 160, 80),
    (120, 60, 0),
    (0, 0, 160),
    (0, 255, 255),
]
PUSHER_CAMERA = {"trackbodyid": -1, "distance": 1.8, "elevation": -60.0, "azimuth": 135.0, "lookat": [0.2, -0.3, 0.0]}


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's border pixels, two pixels thick: the mask minus its erosion by a 5 x 5 square."""
    padded = np.pad(mask, 2)
    height, width = mask.shape
    inner = np.ones_like(mask)
    for dy in range(5):
        for dx in range(5):
            inner &= padded[dy : dy + height, dx : dx + width]
    return mask & ~inner


def filmstrip(frames: np.ndarray, masks: np.ndarray, visible: np.ndarray, steps: list[int], vertical: bool) -> Any:
    """Frames (T, C, H, W) uint8 at ``steps``, each visible slot's mask outlined in its colour, with captions."""
    tiles = []
    for t in steps:
        tile = frames[t].transpose(1, 2, 0).copy()
        for slot in np.flatnonzero(visible[t]):
            tile[outline(masks[t, slot])] = PALETTE[slot % len(PALETTE)]
        image = Image.fromarray(tile)
        caption = f"step {t + 1}: {int(visible[t].sum())} of {visible.shape[1]} visible"
        draw = ImageDraw.Draw(image)
        draw.rectangle(draw.textbbox((3, 2), caption), fill=(0, 0, 0))
        draw.text((3, 2), caption, fill=(255, 255, 255))
        tiles.append(image)
    gap = 4
    width, height = tiles[0].size
    size = (width, len(tiles) * (height + gap) - gap) if vertical else (len(tiles) * (width + gap) - gap, height)
    strip = Image.new("RGB", size, (255, 255, 255))
    for i, tile in enumerate(tiles):
        strip.paste(tile, (0, i * (height + gap)) if vertical else (i * (width + gap), 0))
    return strip


def _pusher(make: Any) -> Any:
    env = make()
    env.unwrapped.model.light_castshadow[:] = 0
    return env


def sweep(observation: Any, env: Any, rng: Any) -> np.ndarray:
    """Swing the arm across the table, over the object: it is hidden for a few steps, then seen again."""
    return np.array([1.0, -1.0, 0.0, -1.0, 0.0, 0.0, 0.0], dtype=np.float32)


def pusher_picture() -> Any:
    """Pusher-v5, seed 0: the object (magenta) is hidden while the arm sweeps over it; the goal (yellow) stays."""
    make = functools.partial(_pusher, mujoco_env_fn("Pusher-v5", 160, 160, default_camera_config=PUSHER_CAMERA))
    probe = build_probe_set(
        make, [0], sweep, num_counterfactual=1, horizon=24, size=(160, 160), mask_extractor=mujoco_objects
    )
    masks, visible = probe.masks[0].numpy(), probe.visible[0].numpy()
    return filmstrip(probe.targets[0, 0].numpy(), masks, visible, [3, 11, 12, 17, 23], vertical=False)


def keep_lane(observation: Any, env: Any, rng: Any) -> int:
    """Keep the lane and the speed: faster vehicles pass the ego, others fall behind, vehicles enter and leave."""
    return 1


def highway_picture() -> Any:
    """highway-fast-v0, seed 3: one colour per vehicle, the ego (green) in magenta, vehicles entering and leaving."""
    road = {"screen_width": 384, "screen_height": 96, "scaling": 4.0, "vehicles_count": 12, "vehicles_density": 2.0}
    probe = build_probe_set(
        highway_env_fn("highway-fast-v0", **road),
        [3],
        keep_lane,
        num_counterfactual=1,
        horizon=8,
        size=(96, 384),
        mask_extractor=highway_objects,
        success_fn=no_crash,
    )
    masks, visible = probe.masks[0].numpy(), probe.visible[0].numpy()
    return filmstrip(probe.targets[0, 0].numpy(), masks, visible, [0, 2, 4, 6], vertical=True)


def main() -> None:
    """Write both pictures into docs/img/."""
    IMG.mkdir(exist_ok=True)
    for name, draw in (("pusher_masks.png", pusher_picture), ("highway_masks.png", highway_picture)):
        draw().save(IMG / name, optimize=True)
        print(IMG / name)


if __name__ == "__main__":
    main()
