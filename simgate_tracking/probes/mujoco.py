"""Robots built in: Gymnasium MuJoCo environments rendering headless, exact object masks and Pusher's task judge."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from simgate_tracking._utils import check_positive_int
from simgate_tracking.probes._optional import import_optional

PUSHER_GOAL_RADIUS = 0.08
"""The radius of Pusher's goal disc (its geom's size): the object is at the goal when its centre is within it."""

__all__ = ["PUSHER_GOAL_RADIUS", "mujoco_env_fn", "mujoco_objects", "object_in_goal"]

_SEGMENTATION = "_simgate_segmentation"  # the segmentation renderer kept on env.unwrapped


def _headless() -> None:
    """Render with EGL (no display) unless the user chose a backend; must run before mujoco is imported."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


_headless()  # on import too: MuJoCo picks its GL backend once, when it is first imported


def _make(env_id: str, width: int, height: int, kwargs: dict[str, Any]) -> Any:
    _headless()
    gym = import_optional("gymnasium", "mujoco")
    import_optional("mujoco", "mujoco")
    return gym.make(env_id, render_mode="rgb_array", width=width, height=height, **kwargs)


def mujoco_env_fn(env_id: str, width: int = 128, height: int = 128, **kwargs: Any) -> Callable[[], Any]:
    """A picklable factory of the Gymnasium MuJoCo environment ``env_id``, rendering ``rgb_array`` frames headless.

    ``MUJOCO_GL=egl`` is set before MuJoCo is imported, unless the user set ``MUJOCO_GL`` already.

    Args:
        env_id: A registered Gymnasium MuJoCo id, for example ``"Pusher-v5"``.
        width: Width of the rendered frame in pixels.
        height: Height of the rendered frame in pixels.
        **kwargs: Passed on to ``gymnasium.make`` (the environment's own options, e.g. ``frame_skip``).

    Raises:
        ValueError: If ``env_id`` is not registered, or ``width``/``height`` is not a positive int.
        ModuleNotFoundError: Without gymnasium's MuJoCo support (``pip install simgate-tracking[mujoco]``).
    """
    _headless()
    gym = import_optional("gymnasium", "mujoco")
    import_optional("mujoco", "mujoco")
    if env_id not in gym.registry:
        raise ValueError(f"Expected a registered Gymnasium MuJoCo environment id but got {env_id!r}")
    for name, value in (("width", width), ("height", height)):
        check_positive_int(value, name)
    return functools.partial(_make, env_id, width, height, dict(kwargs))


def _robot_bodies(model: Any) -> set[int]:
    """Bodies moved by an actuated joint: the body of every actuated joint and all its descendants."""
    mujoco = import_optional("mujoco", "mujoco")
    driven = {
        int(model.jnt_bodyid[model.actuator_trnid[a, 0]])
        for a in range(model.nu)
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
    }
    robot = set()
    for body in range(model.nbody):
        ancestor = body
        while ancestor > 0 and ancestor not in driven:
            ancestor = int(model.body_parentid[ancestor])
        if ancestor > 0:
            robot.add(body)
    return robot


def _default_bodies(model: Any) -> list[int]:
    """Every body but the world, a floor (only plane geoms) and robot links."""
    mujoco = import_optional("mujoco", "mujoco")
    robot = _robot_bodies(model)
    chosen = []
    for body in range(1, model.nbody):
        geoms = np.flatnonzero(model.geom_bodyid == body)
        floor = len(geoms) > 0 and all(model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE for g in geoms)
        if body not in robot and not floor and len(geoms) > 0:
            chosen.append(body)
    return chosen


def _body_ids(model: Any, names: Sequence[str] | None) -> dict[str, int]:
    mujoco = import_optional("mujoco", "mujoco")
    if names is None:
        return {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b): b for b in _default_bodies(model)}
    known = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(model.nbody)]
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(f"Expected body names of the model, one of {known}, but got {missing}")
    return {name: known.index(name) for name in names}


def _segmentation(env: Any) -> np.ndarray:
    """(h, w) geom id per pixel (-1 where no geom), seen from the camera the env renders its frames with."""
    mujoco = import_optional("mujoco", "mujoco")
    inner = env.unwrapped
    renderer = inner.mujoco_renderer
    viewer = renderer._get_viewer("rgb_array")  # the env's own camera and visual options
    segmenter = getattr(inner, _SEGMENTATION, None)
    if segmenter is None:
        segmenter = mujoco.Renderer(inner.model, height=renderer.height, width=renderer.width)
        segmenter.enable_segmentation_rendering()
        setattr(inner, _SEGMENTATION, segmenter)
    segmenter.update_scene(inner.data, camera=viewer.cam, scene_option=viewer.vopt)
    ids = segmenter.render()
    return np.where(ids[:, :, 1] == int(mujoco.mjtObj.mjOBJ_GEOM), ids[:, :, 0], -1)


def mujoco_objects(env: Any, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """A mask extractor for MuJoCo: one exact mask per named body, from MuJoCo's segmentation rendering.

    The segmentation is rendered with the camera and visual options of the env's own ``rgb_array`` frames, so
    the masks line up with them pixel for pixel, and a body hidden behind another (Pusher's object behind the
    arm) loses the pixels it loses in the frame. A body that shows no pixel is left out (not visible).

    Args:
        env: A Gymnasium MuJoCo environment made with ``render_mode="rgb_array"`` (see :func:`mujoco_env_fn`).
        names: Body names; default every body that is not the world, a floor or a robot link (a body moved by an
            actuated joint). Use ``functools.partial(mujoco_objects, names=[...])`` as the builder's extractor.

    Returns:
        ``{body name: (h, w) bool mask}`` of the visible bodies.

    Raises:
        ValueError: If a name is not a body of the model (the message lists the bodies).
    """
    inner = env.unwrapped
    bodies = _body_ids(inner.model, names)
    geoms = _segmentation(env)
    owner = np.where(geoms >= 0, inner.model.geom_bodyid[np.clip(geoms, 0, None)], -1)
    masks = {name: owner == body for name, body in bodies.items()}
    return {name: mask for name, mask in masks.items() if mask.any()}


def object_in_goal(env: Any, radius: float = PUSHER_GOAL_RADIUS) -> bool:
    """Pusher's task, judged on the env state: is the object's centre within ``radius`` of the goal's, in the plane?

    Give it to ``build_probe_set(..., success_fn=object_in_goal)``: a branch succeeds when the object is in the
    goal at its last step.

    Args:
        env: A Pusher environment (bodies ``object`` and ``goal``).
        radius: The goal radius in metres; default the goal disc's radius.
    """
    inner = env.unwrapped
    offset = inner.get_body_com("object")[:2] - inner.get_body_com("goal")[:2]
    return bool(np.linalg.norm(offset) <= radius)
