"""What a config file can hold: a probe set as a path, functions as import strings (LightningCLI, YAML)."""

from __future__ import annotations

import importlib
import os
from typing import Any

from simgate_tracking.probe import ProbeSet


def as_probe_set(value: Any) -> ProbeSet:
    """A :class:`ProbeSet`, or one read from a path written by :meth:`ProbeSet.save` (a str or ``os.PathLike``).

    Raises:
        ValueError: If ``value`` is neither, or the file is not a probe set.
        FileNotFoundError: If the path does not exist.
    """
    if isinstance(value, ProbeSet):
        return value
    if isinstance(value, (str, os.PathLike)):
        if not os.path.isfile(value):
            raise FileNotFoundError(f"Expected argument `probe_set` to name a probe set file but {value!r} is no file")
        return ProbeSet.load(value)
    raise ValueError(f"Expected argument `probe_set` to be a ProbeSet or a path to one but got {type(value).__name__}")


def as_callable(value: Any, name: str) -> Any:
    """``value`` if it is callable (or None), else the function an import string names.

    Import strings are ``"package.module:function"`` or ``"package.module.function"``; an attribute path after the
    colon (``"package.module:Class.method"``) is followed.

    Raises:
        ValueError: If ``value`` is neither callable nor an import string of something callable.

    Example:
        >>> as_callable("math:sqrt", "task_fn")(16.0), as_callable("math.sqrt", "task_fn")(9.0)
        (4.0, 3.0)
    """
    if value is None or callable(value):
        return value
    if not isinstance(value, str):
        raise ValueError(f"Expected argument `{name}` to be callable or an import string but got {value!r}")
    module_name, _, attribute = value.partition(":") if ":" in value else value.rpartition(".")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(
            f"Expected argument `{name}` to be an import string 'package.module:function' but {value!r} does not "
            f"import: {type(err).__name__}: {err}"
        ) from err
    if not callable(found):
        raise ValueError(
            f"Expected argument `{name}` to name something callable but {value!r} is {type(found).__name__}"
        )
    return found
