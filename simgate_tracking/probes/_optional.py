"""Optional dependencies of the environment probes, imported only when a builder needs them."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, extra: str = "gym") -> ModuleType:
    """Import ``module``, or raise a ``ModuleNotFoundError`` that names the extra to install.

    Args:
        module: The module's import name, for example ``"gymnasium"``.
        extra: The simgate-tracking extra that installs it.

    Raises:
        ModuleNotFoundError: If ``module`` is not installed.

    Example:
        >>> import_optional("math").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"Building probe sets from environments needs `{module}`, which is not installed: "
            f"pip install simgate-tracking[{extra}]"
        ) from err
