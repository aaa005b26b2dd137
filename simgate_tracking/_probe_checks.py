"""What a valid probe set is: every field checked, each error naming the field, what was expected and what was given."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from simgate_tracking.probe_file import chunks


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def require(ok: bool, field: str, expected: str, got: Any) -> None:
    """Raise ``ValueError("ProbeSet: expected `field` <expected> but got <got>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"ProbeSet: expected `{field}` {expected} but got {got}")


def check_has_data(fields: Mapping[str, Any]) -> None:
    """Every given tensor (or take of one) holds values: a tensor on the meta device has none to check or score."""
    for name, value in fields.items():
        for x in value if isinstance(value, list | tuple) else [value]:
            if isinstance(x, Tensor):
                require(x.device.type != "meta", name, "to hold values (not on the meta device)", "a meta tensor")


def check_frames(x: Tensor, field: str, rank: int, layout: str) -> None:
    """Frames: a tensor of the given rank, uint8 or float, finite and in [0, 1]."""
    require(isinstance(x, Tensor), field, f"to be a torch.Tensor of shape {layout}", type(x).__name__)
    require(x.ndim == rank, field, f"to have shape {layout}", f"shape {_shape(x)}")
    require(x.dtype == torch.uint8 or x.is_floating_point(), field, "to be float in [0, 1] or uint8", x.dtype)
    if x.is_floating_point() and x.numel():
        # one pass, a slice at a time, no temporary as large as the frames: NaN propagates to both ends, Inf to one
        ends = torch.stack([torch.stack(torch.aminmax(part.detach())) for part in chunks(x)])
        lo, hi = float(ends[:, 0].min()), float(ends[:, 1].max())
        require(math.isfinite(lo) and math.isfinite(hi), field, "to hold only finite values", "NaN or Inf")
        require(lo >= 0.0 and hi <= 1.0, field, "to hold values in [0, 1]", f"values from {lo:.4g} to {hi:.4g}")


def as_tensor(x: Any, field: str, layout: str) -> Tensor:
    """``x`` as a tensor of real or integer numbers; strings, complex numbers and ragged lists are refused."""
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            require(False, field, f"to be a tensor of numbers of shape {layout}", type(x).__name__)
    require(not x.is_complex(), field, "to hold real numbers", x.dtype)
    return x


def check_vector(x: Tensor | None, field: str, n: int, integer: bool) -> Tensor | None:
    """A per-episode vector (N,), optionally of integers (returned as int64); None passes."""
    if x is None:
        return None
    x = as_tensor(x, field, "(N,)")
    require(x.ndim == 1 and x.shape[0] == n, field, f"to have shape (N,) = ({n},)", f"shape {_shape(x)}")
    if integer:
        require(not x.is_floating_point() and x.dtype != torch.bool, field, "to be an integer tensor", x.dtype)
        return x.long()
    return x


def check_group_ids(groups: Tensor | None, n: int) -> Tensor | None:
    """Policy ids index per-policy sums, one per id up to the largest: ids run from 0 and stay below N."""
    if groups is not None and groups.numel():
        lowest, highest = (int(v) for v in torch.aminmax(groups))
        require(lowest >= 0, "groups", "to hold policy ids >= 0", f"an id of {lowest}")
        # N episodes hold at most N policies: a larger id would only make the per-policy sums huge
        require(
            highest < n, "groups", f"to hold policy ids below the number of episodes N = {n}", f"an id of {highest}"
        )
    return groups


def stack_takes(x: Any, field: str, layout: str) -> Any:
    """A list or tuple of per-take tensors stacked on a takes dimension after N; anything else passes unchanged.

    Raises:
        ValueError: If the takes are not tensors or disagree in shape, naming the first take that differs.
    """
    if not isinstance(x, list | tuple):
        return x
    require(len(x) > 0, field, f"to hold R >= 1 takes of shape {layout}", "an empty sequence")
    for r, take in enumerate(x):
        kind = type(take).__name__
        require(isinstance(take, Tensor), f"{field}[{r}]", f"to be a torch.Tensor of shape {layout}", kind)
        require(
            _shape(take) == _shape(x[0]) and take.dtype == x[0].dtype,
            f"{field}[{r}]",
            f"to have the shape and dtype of take 0, {_shape(x[0])} {x[0].dtype}",
            f"shape {_shape(take)} {take.dtype}",
        )
    return torch.stack(list(x), dim=1)


def num_takes(targets: Tensor) -> int:
    """R: real takes per episode, from the rank of ``targets`` (6-D: one take)."""
    return int(targets.shape[1]) if targets.ndim == 7 else 1


def check_episodes(context: Tensor, actions: Tensor, targets: Tensor) -> tuple[int, int, int, int, int]:
    """Check the three fields every probe set has; return (N, K+1, T, H, W).

    ``targets`` is (N, K+1, T, C, H, W) for one real take, or (N, R, K+1, T, C, H, W) for R takes.
    """
    check_frames(context, "context", 5, "(N, T0, C, H, W)")
    n, _, c, h, w = context.shape
    require(n > 0, "context", "to hold at least one episode", "N = 0")
    require(min(context.shape[1:]) > 0, "context", "to hold T0 >= 1 frames of non-empty (C, H, W)", _shape(context))
    layout = "(N, K+1, T, C, H, W) or (N, R, K+1, T, C, H, W)"
    require(isinstance(targets, Tensor), "targets", f"to be a torch.Tensor of shape {layout}", type(targets).__name__)
    check_frames(targets, "targets", targets.ndim if targets.ndim in (6, 7) else 6, layout)
    takes = num_takes(targets)
    require(takes >= 1, "targets", "to hold R >= 1 takes", f"shape {_shape(targets)}")
    require(
        targets.shape[0] == n and targets.shape[-3:] == (c, h, w),
        "targets",
        f"to have shape (N, {'R, ' * (takes > 1)}K+1, T, C, H, W) = ({n}, {'R, ' * (takes > 1)}K+1, T, {c}, {h}, {w}) "
        "like `context`",
        f"shape {_shape(targets)}",
    )
    branches, horizon = targets.shape[-5], targets.shape[-4]
    require(branches >= 2, "targets", "to hold K+1 >= 2 branches (reference + K >= 1 counterfactual)", branches)
    require(horizon >= 2, "targets", "to hold T >= 2 future steps", f"T = {horizon}")
    require(isinstance(actions, Tensor), "actions", "to be a torch.Tensor", type(actions).__name__)
    require(
        actions.ndim == 4 and _shape(actions)[:3] == (n, branches, horizon),
        "actions",
        f"to have shape (N, K+1, T, A) = ({n}, {branches}, {horizon}, A)",
        f"shape {_shape(actions)}",
    )
    require(actions.shape[3] > 0, "actions", "to hold actions of size A >= 1", f"shape {_shape(actions)}")
    require(
        actions.dtype != torch.bool and not actions.is_complex(),
        "actions",
        "to be a real or integer tensor",
        actions.dtype,
    )
    if actions.is_floating_point():
        finite = all(bool(torch.isfinite(part).all()) for part in chunks(actions))
        require(finite, "actions", "to hold only finite values", "NaN or Inf")
    return n, branches, horizon, h, w


def check_objects(  # noqa: PLR0913
    masks: Tensor | None, visible: Tensor | None, n: int, horizon: int, h: int, w: int, takes: int = 1
) -> tuple[Tensor | None, Tensor | None]:
    """Masks (N, [R,] T, M, H, W) bool and visibility (N, [R,] T, M) bool; visibility defaults to "mask non-empty".

    With R > 1 takes, masks and visibility are per take.
    """
    if masks is None:
        require(visible is None, "visible", "to come with `masks`", "visible without masks")
        return None, None
    lead = (n, horizon) if takes == 1 else (n, takes, horizon)
    shown_lead = "(N, T" if takes == 1 else "(N, R, T"
    require(
        isinstance(masks, Tensor)
        and masks.ndim == len(lead) + 3
        and masks.shape[: len(lead)] == lead
        and masks.shape[-2:] == (h, w),
        "masks",
        f"to have shape {shown_lead}, M, H, W) = ({', '.join(map(str, lead))}, M, {h}, {w})",
        f"shape {_shape(masks) if isinstance(masks, Tensor) else type(masks).__name__}",
    )
    require(masks.dtype == torch.bool, "masks", "to be a bool tensor", masks.dtype)
    require(masks.shape[-3] > 0, "masks", "to hold M >= 1 object slots", f"shape {_shape(masks)}")
    shown = torch.cat([part.flatten(-2).any(dim=-1) for part in chunks(masks)])
    if visible is None:
        visible = shown
    expected = (*lead, masks.shape[-3])
    require(
        isinstance(visible, Tensor) and _shape(visible) == expected,
        "visible",
        f"to have shape {shown_lead}, M) = {expected}",
        f"shape {_shape(visible) if isinstance(visible, Tensor) else type(visible).__name__}",
    )
    require(visible.dtype == torch.bool, "visible", "to be a bool tensor", visible.dtype)
    # object persistence needs something to score: one visible object with a non-empty mask
    require(bool((visible & shown).any()), "masks", "to show an object at some visible step", "none")
    return masks, visible


def check_outcomes(outcomes: Tensor | None, n: int, branches: int, takes: int = 1) -> Tensor | None:
    """Real task outcomes: (N, [R]) for the reference branch or (N, [R,] K+1) per branch, finite."""
    if outcomes is None:
        return None
    outcomes = as_tensor(outcomes, "outcomes", "(N,) or (N, K+1)")
    shapes: tuple[tuple[int, ...], ...]
    if takes == 1:
        shapes, expected = ((n,), (n, branches)), f"(N,) = ({n},) or (N, K+1) = ({n}, {branches})"
    else:
        shapes = ((n, takes), (n, takes, branches))
        expected = f"(N, R) = ({n}, {takes}) or (N, R, K+1) = ({n}, {takes}, {branches}), one outcome per take"
    require(_shape(outcomes) in shapes, "outcomes", f"to have shape {expected}", f"shape {_shape(outcomes)}")
    if outcomes.is_floating_point():
        require(bool(torch.isfinite(outcomes).all()), "outcomes", "to hold only finite values", "NaN or Inf")
    return outcomes


def trackable(x: Any) -> Any:
    """``x``, or a copy where it is an inference tensor (those keep no version counter to detect changes by)."""
    if isinstance(x, Tensor) and x.is_inference():
        with torch.inference_mode(False):
            return x.clone()
    return x


def one_take_squeezed(targets: Any, masks: Any, visible: Any, outcomes: Any) -> tuple[Any, Any, Any, Any]:
    """Fields given with a takes dimension of size 1, stored without it: one take is one form, one hash."""
    if not (isinstance(targets, Tensor) and targets.ndim == 7 and targets.shape[1] == 1):
        return targets, masks, visible, outcomes

    def squeeze(x: Any, rank: int) -> Any:
        return x.squeeze(1) if isinstance(x, Tensor) and x.ndim == rank and x.shape[1] == 1 else x

    # per-take outcomes are (N, 1) or (N, 1, K+1); (N, K+1) has K+1 >= 2 and is left alone
    outcome_rank = outcomes.ndim if isinstance(outcomes, Tensor) and outcomes.ndim in (2, 3) else -1
    return targets.squeeze(1), squeeze(masks, 6), squeeze(visible, 4), squeeze(outcomes, outcome_rank)


def checked_fields(  # noqa: PLR0913
    context: Any,
    actions: Any,
    targets: Any,
    masks: Any,
    visible: Any,
    outcomes: Any,
    groups: Any,
    seeds: Any,
) -> dict[str, Any]:
    """Every field of a probe set checked, takes stacked, one take squeezed, seeds defaulted; keyed by field name."""
    given = {"context": context, "actions": actions, "targets": targets, "masks": masks, "visible": visible}
    check_has_data({**given, "outcomes": outcomes, "groups": groups, "seeds": seeds})
    targets, masks, visible, outcomes = one_take_squeezed(
        stack_takes(targets, "targets", "(N, K+1, T, C, H, W)"),
        stack_takes(masks, "masks", "(N, T, M, H, W)"),
        stack_takes(visible, "visible", "(N, T, M)"),
        stack_takes(outcomes, "outcomes", "(N,) or (N, K+1)"),
    )
    n, branches, horizon, h, w = check_episodes(context, actions, targets)
    takes = num_takes(targets)
    masks, visible = check_objects(masks, visible, n, horizon, h, w, takes)
    checked_seeds = check_vector(seeds, "seeds", n, integer=True)
    return {
        "context": context,
        "actions": actions,
        "targets": targets,
        "masks": masks,
        "visible": visible,
        "outcomes": check_outcomes(outcomes, n, branches, takes),
        "groups": check_group_ids(check_vector(groups, "groups", n, integer=True), n),
        "seeds": torch.arange(n, dtype=torch.long) if checked_seeds is None else checked_seeds,
    }
