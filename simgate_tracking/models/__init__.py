"""World models users train, built on their ecosystems: diffusion world models through diffusers.

``DiffusionWorldModel`` is a small DIAMOND-style next-frame denoiser; ``DiffusersRollout`` turns a user's own
diffusers denoiser and scheduler into a ``rollout`` the gate can score. diffusers (the ``diffusion`` extra) is
imported on first use.
"""

from typing import Any

_LAZY = {
    "DiffusionWorldModel": "simgate_tracking.models.diffusion",
    "DiffusersRollout": "simgate_tracking.models.diffusers_rollout",
}

__all__ = ["DiffusersRollout", "DiffusionWorldModel"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simgate_tracking.models' has no attribute {name!r}")
