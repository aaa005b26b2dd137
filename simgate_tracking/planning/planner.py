"""A planner over discrete action sequences: the cross-entropy method, which is random shooting at one iteration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from simgate_tracking._utils import check_int

ScoreFn = Callable[[Tensor], tuple[Tensor, Tensor]]
"""``score(actions) -> (values, frames)``: (N, H) action indices -> (N,) task values (higher is better) and the
(N, H, C, H, W) frames they were judged on."""


@dataclass(frozen=True)
class Plan:
    """The best action sequence a planner found.

    Attributes:
        actions: (H,) int64 action indices.
        value: Its task value.
        frames: (H, C, H, W) the future it was judged on (what the planner expects to happen).
    """

    actions: Tensor
    value: float
    frames: Tensor


class CrossEntropyPlanner:
    """Plan a sequence of ``horizon`` discrete actions by the cross-entropy method over per-step categoricals.

    Each iteration draws ``candidates`` sequences from one categorical distribution per step (uniform at first),
    scores them all in one call, keeps the best ``elites`` and moves each step's distribution to the elites'
    action frequencies (mixed with ``smoothing`` of the uniform one, so no action dies out). With
    ``iterations=1`` it is random shooting. The budget is ``candidates x horizon`` imagined steps per iteration.
    Candidate 0 is the warm start (the previous plan, shifted), then the best sequence so far, so a plan is only
    dropped for a strictly better one; ties keep the earliest candidate.

    Args:
        num_actions: A, the number of discrete actions.
        horizon: H, actions per sequence.
        candidates: Sequences scored per iteration.
        iterations: Rounds of sampling and refitting.
        elites: Sequences the distribution is refitted to (at most ``candidates``).
        smoothing: Weight of the uniform distribution in every refit, in [0, 1).

    Raises:
        ValueError: On an argument out of range.

    Example:
        >>> import torch
        >>> planner = CrossEntropyPlanner(num_actions=3, horizon=4, candidates=16, iterations=2)
        >>> def count_twos(actions):  # the task: play action 2 as often as possible
        ...     values = (actions == 2).sum(dim=1).float()
        ...     return values, torch.zeros(len(actions), 4, 1, 1, 1)
        >>> plan = planner.plan(count_twos, torch.Generator().manual_seed(0))
        >>> plan.actions.tolist(), plan.value
        ([2, 2, 2, 2], 4.0)
    """

    def __init__(
        self,
        num_actions: int,
        horizon: int = 6,
        candidates: int = 32,
        iterations: int = 2,
        elites: int = 4,
        smoothing: float = 0.1,
    ) -> None:
        self.num_actions = check_int(num_actions, "num_actions", 2)
        self.horizon = check_int(horizon, "horizon", 1)
        self.candidates = check_int(candidates, "candidates", 2)
        self.iterations = check_int(iterations, "iterations", 1)
        self.elites = min(check_int(elites, "elites", 1), self.candidates)
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
            raise ValueError(f"Expected argument `smoothing` to be a float in [0, 1) but got {smoothing!r}")
        self.smoothing = float(smoothing)

    def plan(self, score: ScoreFn, generator: torch.Generator, warm_start: Tensor | None = None) -> Plan:
        """The best sequence found for ``score``; draws candidates from ``generator`` only.

        Args:
            score: Judges a batch of candidate sequences (see :data:`ScoreFn`).
            generator: The source of the candidates, seeded by the caller (CPU).
            warm_start: (H,) a sequence to try first, e.g. the previous plan shifted by the steps played.

        Raises:
            ValueError: If ``score`` returns values of the wrong shape.
        """
        probs = torch.full((self.horizon, self.num_actions), 1.0 / self.num_actions)
        best: Plan | None = None
        for _ in range(self.iterations):
            actions = torch.multinomial(probs, self.candidates, replacement=True, generator=generator).T
            first = warm_start if best is None else best.actions
            if first is not None:
                actions[0] = first.to(actions.device)
            values, frames = score(actions)
            if not isinstance(values, Tensor) or tuple(values.shape) != (self.candidates,):
                got = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
                raise ValueError(f"Expected task values of shape (N,) = ({self.candidates},) but got {got}")
            # a non-finite value (a NaN rollout) never wins over a finite one
            values = torch.nan_to_num(values.detach().double().cpu(), nan=-torch.inf, posinf=-torch.inf)
            order = torch.sort(values, descending=True, stable=True).indices
            top = int(order[0])
            if best is None or values[top] > best.value:
                best = Plan(actions[top].clone(), float(values[top]), frames[top].detach())
            counts = F.one_hot(actions[order[: self.elites]], self.num_actions).double().mean(dim=0)
            probs = ((1 - self.smoothing) * counts + self.smoothing / self.num_actions).float()
        assert best is not None  # iterations >= 1
        return best
