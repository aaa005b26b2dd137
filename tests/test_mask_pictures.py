"""The mask pictures of README's "Robots and vehicles": committed, shown, and drawn by docs/mask_pictures.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PICTURES = {"pusher_masks.png": (5, "horizontal"), "highway_masks.png": (4, "vertical")}


def _script():
    pytest.importorskip("mujoco")
    pytest.importorskip("highway_env")
    spec = importlib.util.spec_from_file_location("mask_pictures", ROOT / "docs" / "mask_pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_pictures_are_committed_and_shown_in_readme_and_docs(name):
    image = pytest.importorskip("PIL.Image").open(ROOT / "docs" / "img" / name)
    tiles, direction = PICTURES[name]
    width, height = image.size
    assert (width > height) if direction == "horizontal" else (height > width)
    assert f"](docs/img/{name})" in (ROOT / "README.md").read_text()
    assert f"](img/{name})" in (ROOT / "docs" / "environments.md").read_text()
    pixels = np.asarray(image.convert("RGB"))
    magenta = (pixels[..., 0] == 255) & (pixels[..., 1] == 0) & (pixels[..., 2] == 255)
    assert magenta.sum() > 20 * tiles  # slot 0's outline is drawn on every tile


def test_outline_is_the_border_of_a_mask_two_pixels_thick():
    script = _script()
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:8, 1:8] = True
    border = script.outline(mask)
    assert border[1, 1:8].all() and border[2, 2:7].all() and border[1:8, 7].all()
    assert not border[3:6, 3:6].any() and not border[0].any()  # the inside and the outside stay undrawn


def test_filmstrip_outlines_visible_slots_only():
    script = _script()
    frames = np.zeros((2, 3, 40, 40), dtype=np.uint8)
    masks = np.zeros((2, 2, 40, 40), dtype=bool)
    masks[:, :, 20:35, 5:35] = True  # below the caption
    visible = np.array([[True, False], [False, False]])  # step 1: slot 0 only; step 2: nothing
    strip = np.asarray(script.filmstrip(frames, masks, visible, [0, 1], vertical=False))
    first, second = strip[:, :40], strip[:, 44:]
    assert (first == script.PALETTE[0]).all(axis=2)[34, 5:35].all()  # the mask's bottom edge
    assert not (first == script.PALETTE[1]).all(axis=2).any()  # slot 1 is not visible: not drawn
    assert not (second == script.PALETTE[0]).all(axis=2).any()
