"""Optional dependencies of the environment probes, imported only when a builder needs them."""

from __future__ import annotations

from types import ModuleType

from simgate_tracking._utils import require


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
    return require(extra, module, "Building probe sets from environments")
