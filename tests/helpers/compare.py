"""Comparing nested results: dicts of tensors, key by key."""

import torch


def assert_tree_close(a, b, name="", rtol=1e-6, atol=1e-6):
    """Assert two tensors, or dicts of them (nested, same keys in the same order), are close; NaN equals NaN."""
    if isinstance(a, dict):
        assert list(a) == list(b), name
        for key in a:
            assert_tree_close(a[key], b[key], f"{name}.{key}", rtol, atol)
    else:
        assert torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True), (name, a, b)
