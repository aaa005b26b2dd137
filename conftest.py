"""Doctest collection of the package: a module that needs an extra that is not installed is skipped."""

import importlib.util

# module file -> the optional module it imports at the top
_NEEDS = {"simgate_tracking/functional/_fused_kernel.py": "numba"}

collect_ignore = [path for path, module in _NEEDS.items() if importlib.util.find_spec(module) is None]
