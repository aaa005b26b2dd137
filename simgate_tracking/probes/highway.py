"""Vehicles built in: highway-env rendering headless, one mask per vehicle, and the crash outcome."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from simgate_tracking.probes._optional import import_optional

__all__ = ["highway_env_fn", "highway_objects", "no_crash"]


def _make(env_id: str, config: dict[str, Any]) -> Any:
    gym = import_optional("gymnasium", "highway")
    import_optional("highway_env", "highway")  # registers the highway-env ids
    return gym.make(env_id, render_mode="rgb_array", config={"offscreen_rendering": True, **config})


def highway_env_fn(env_id: str = "highway-fast-v0", **config: Any) -> Callable[[], Any]:
    """A picklable factory of the highway-env environment ``env_id``, rendering ``rgb_array`` frames headless.

    Rendering is offscreen (``offscreen_rendering=True``): with ``SDL_VIDEODRIVER=dummy`` and a display surface
    highway-env draws black frames, which the probe builder refuses.

    Args:
        env_id: A registered highway-env id, for example ``"highway-fast-v0"`` or ``"intersection-v0"``.
        **config: highway-env configuration entries (``screen_width``, ``vehicles_count``, ``duration``, ...).

    Raises:
        ValueError: If ``env_id`` is not registered.
        ModuleNotFoundError: Without highway-env (``pip install simgate-tracking[highway]``).
    """
    gym = import_optional("gymnasium", "highway")
    import_optional("highway_env", "highway")
    if env_id not in gym.registry:
        raise ValueError(f"Expected a registered highway-env environment id but got {env_id!r}")
    return functools.partial(_make, env_id, dict(config))


def _corners(vehicle: Any) -> np.ndarray:
    """(4, 2) world corners of the vehicle's box, from its position, heading, length and width."""
    c, s = np.cos(vehicle.heading), np.sin(vehicle.heading)
    half = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * [vehicle.LENGTH / 2, vehicle.WIDTH / 2]
    return np.asarray(vehicle.position) + half @ np.array([[c, s], [-s, c]])


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Whether each of (P, 2) points lies inside the convex (4, 2) polygon, whatever its orientation."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    rel = points[:, None, :] - polygon[None]
    cross = edges[None, :, 0] * rel[..., 1] - edges[None, :, 1] * rel[..., 0]
    return np.asarray((cross >= 0).all(axis=1) | (cross <= 0).all(axis=1))


def highway_objects(env: Any) -> dict[Any, np.ndarray]:
    """A mask extractor for highway-env: one mask per vehicle on screen, keyed by the vehicle object itself.

    Each vehicle's box (position, heading, ``LENGTH`` x ``WIDTH``) is projected through the env's own viewer
    transform (``WorldSurface.pos2pix``: origin and scaling of the frame just rendered) and filled at pixel
    centres, so masks line up with ``env.render()``. The ego vehicle is included. A vehicle off screen is left out.

    Args:
        env: A highway-env environment that has rendered its current frame (the builder renders before it asks).

    Returns:
        ``{vehicle: (h, w) bool mask}`` of the vehicles the frame shows.

    Raises:
        ValueError: If the environment has not rendered (no viewer yet).
    """
    inner = env.unwrapped
    viewer = getattr(inner, "viewer", None)
    if viewer is None:
        raise ValueError("Expected a highway-env environment that has rendered a frame but it has no viewer yet")
    surface = viewer.sim_surface
    width, height = surface.get_width(), surface.get_height()
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    masks = {}
    for vehicle in inner.road.vehicles:
        corners = np.array([surface.pos2pix(x, y) for x, y in _corners(vehicle)], dtype=float)
        if (
            corners[:, 0].max() < 0
            or corners[:, 1].max() < 0
            or corners[:, 0].min() >= width
            or corners[:, 1].min() >= height
        ):
            continue
        mask = _inside(pixels, corners).reshape(height, width)
        if mask.any():
            masks[vehicle] = mask
    return masks


def no_crash(env: Any) -> bool:
    """The outcome of a highway-env branch: True when the ego vehicle has not crashed (a crash is the failure).

    Give it to ``build_probe_set(..., success_fn=no_crash)``.
    """
    return not bool(env.unwrapped.vehicle.crashed)
