"""A planner over continuous action sequences: the cross-entropy method with Gaussians, as PlaNet and TD-MPC plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from simgate_tracking._utils import check_int
from simgate_tracking.planning.planner import Plan, ScoreFn

__all__ = ["GaussianPlanner"]


def _float_in(name: str, value: object, interval: str, inside: Callable[[float], bool]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not inside(float(value)):
        raise ValueError(f"Expected argument `{name}` to be a float in {interval} but got {value!r}")
    return float(value)


def _bounds(low: Sequence[float] | Tensor, high: Sequence[float] | Tensor) -> tuple[Tensor, Tensor]:
    low_t = torch.as_tensor(low, dtype=torch.float32).flatten()
    high_t = torch.as_tensor(high, dtype=torch.float32).flatten()
    if (
        low_t.numel() == 0
        or low_t.shape != high_t.shape
        or not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all())
        or bool((low_t >= high_t).any())
    ):
        raise ValueError(
            "Expected arguments `low` and `high` to be finite action bounds of one length with low < high but got "
            f"low={low_t.tolist()}, high={high_t.tolist()}"
        )
    return low_t, high_t


class GaussianPlanner:
    r"""Plan ``horizon`` continuous actions by the cross-entropy method over per-step Gaussians in the action box.

    Each iteration draws ``candidates`` sequences from :math:`\mathcal{N}(\mu_{t}, \sigma_{t}^2)` per step and
    action entry (at first centred in the box with ``init_std`` of its half-width), clipped to ``[low, high]``,
    scores them all in one call, keeps the best ``elites`` and refits mean and standard deviation to them, as
    PlaNet's and TD-MPC's planners do (``momentum`` of the old mean kept; ``min_std`` of the half-width keeps
    exploring). With ``iterations=1`` it is random shooting. Candidate 0 is the warm start (the previous plan,
    shifted), then the best sequence so far, so a plan is only dropped for a strictly better one; ties keep the
    earliest candidate, and a non-finite value (a NaN rollout) never wins over a finite one.

    Args:
        low: (A,) lower bounds of an action.
        high: (A,) upper bounds of an action.
        horizon: H, actions per sequence.
        candidates: Sequences scored per iteration.
        iterations: Rounds of sampling and refitting.
        elites: Sequences the Gaussians are refitted to (at most ``candidates``).
        init_std: The first standard deviation, as a fraction of the box's half-width, in (0, 2].
        min_std: The smallest standard deviation after a refit, as a fraction of the half-width, in [0, init_std].
        momentum: Weight of the old mean in every refit, in [0, 1).

    Raises:
        ValueError: On an argument out of range, naming it.

    Example:
        >>> import torch
        >>> planner = GaussianPlanner(low=[-1.0, -1.0], high=[1.0, 1.0], horizon=3, candidates=64, iterations=4)
        >>> def near(actions):  # the task: every action close to (0.5, -0.5)
        ...     values = -(actions - torch.tensor([0.5, -0.5])).square().sum(dim=(1, 2))
        ...     return values, torch.zeros(len(actions), 3, 1, 1, 1)
        >>> plan = planner.plan(near, torch.Generator().manual_seed(0))
        >>> plan.actions.shape, bool((plan.actions - torch.tensor([0.5, -0.5])).abs().max() < 0.3)
        (torch.Size([3, 2]), True)
    """

    def __init__(
        self,
        low: Sequence[float] | Tensor,
        high: Sequence[float] | Tensor,
        horizon: int = 6,
        candidates: int = 32,
        iterations: int = 3,
        elites: int = 4,
        init_std: float = 1.0,
        min_std: float = 0.05,
        momentum: float = 0.1,
    ) -> None:
        self.low, self.high = _bounds(low, high)
        self.horizon = check_int(horizon, "horizon", 1)
        self.candidates = check_int(candidates, "candidates", 2)
        self.iterations = check_int(iterations, "iterations", 1)
        self.elites = min(check_int(elites, "elites", 1), self.candidates)
        self.init_std = _float_in("init_std", init_std, "(0, 2]", lambda v: 0 < v <= 2)
        self.min_std = _float_in("min_std", min_std, f"[0, init_std={init_std}]", lambda v: 0 <= v <= init_std)
        self.momentum = _float_in("momentum", momentum, "[0, 1)", lambda v: 0 <= v < 1)

    @property
    def action_dim(self) -> int:
        """A, the number of entries of one action."""
        return int(self.low.numel())

    def plan(self, score: ScoreFn, generator: torch.Generator, warm_start: Tensor | None = None) -> Plan:
        """The best sequence found for ``score``; draws candidates from ``generator`` only.

        Args:
            score: Judges a batch of (N, H, A) float candidate sequences: ``score(actions) -> (values, frames)``.
            generator: The source of the candidates, seeded by the caller (CPU).
            warm_start: (H, A) a sequence to try first, e.g. the previous plan shifted by the steps played.

        Raises:
            ValueError: If ``score`` returns values of the wrong shape, or ``warm_start`` is not (H, A).
        """
        shape = (self.horizon, self.action_dim)
        if warm_start is not None and tuple(warm_start.shape) != shape:
            raise ValueError(f"Expected `warm_start` of shape (H, A) = {shape} but got {tuple(warm_start.shape)}")
        half = (self.high - self.low) / 2
        mean = ((self.high + self.low) / 2).expand(shape).clone()
        std = (self.init_std * half).expand(shape).clone()
        best: Plan | None = None
        for _ in range(self.iterations):
            noise = torch.randn((self.candidates, *shape), generator=generator)
            actions = torch.maximum(torch.minimum(mean + std * noise, self.high), self.low)
            first = warm_start if best is None else best.actions
            if first is not None:
                actions[0] = torch.maximum(torch.minimum(first.float().cpu(), self.high), self.low)
            values, frames = score(actions)
            if not isinstance(values, Tensor) or tuple(values.shape) != (self.candidates,):
                got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
                raise ValueError(f"Expected task values of shape (N,) = ({self.candidates},) but got {got}")
            values = torch.nan_to_num(values.detach().double().cpu(), nan=-torch.inf, posinf=-torch.inf)
            order = torch.sort(values, descending=True, stable=True).indices
            top = int(order[0])
            if best is None or values[top] > best.value:
                best = Plan(actions[top].clone(), float(values[top]), frames[top].detach())
            elite = actions[order[: self.elites]]
            mean = self.momentum * mean + (1 - self.momentum) * elite.mean(dim=0)
            std = torch.maximum(elite.std(dim=0, unbiased=False), self.min_std * half)
        assert best is not None  # iterations >= 1
        return best
