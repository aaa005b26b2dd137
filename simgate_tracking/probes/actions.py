"""Action encodings: how an environment's actions become the (A,) vectors a world model reads, and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from simgate_tracking._utils import check_int
from simgate_tracking.probes._optional import import_optional


@runtime_checkable
class ActionEncoder(Protocol):
    """Turns environment actions into float vectors of size :attr:`dim` and back, and draws random actions.

    ``decode(encode(a))`` must give back an action the environment plays exactly like ``a``: the probe builder
    steps the environment with the decoded action, so what the probe set stores is what was played.
    """

    @property
    def dim(self) -> int:
        """A: the size of one encoded action."""

    def encode(self, action: Any) -> Tensor:
        """The (A,) float32 vector of ``action``."""

    def decode(self, encoded: Tensor) -> Any:
        """The environment action of an (A,) vector."""

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random environment action drawn from ``rng``."""


def _integer(action: Any) -> int | None:
    """The int of an integer action given as int, numpy integer, or one-element integer array or tensor."""
    if isinstance(action, Tensor):
        action = action.detach().cpu().numpy()
    if isinstance(action, np.ndarray):
        if action.size != 1 or not np.issubdtype(action.dtype, np.integer):
            return None
        action = action.reshape(()).item()
    if isinstance(action, int | np.integer) and not isinstance(action, bool):
        return int(action)
    return None


class DiscreteActions:
    """One-hot encoding of ``num_actions`` discrete actions ``start .. start + num_actions - 1``.

    Args:
        num_actions: How many actions; a world model sees vectors of this size.
        start: The first action's id (gymnasium's ``Discrete(n, start=...)``).
        names: Optional names of the actions, in id order, for reports.

    Raises:
        ValueError: If ``num_actions`` is not an int >= 1 or ``names`` has another length.

    Example:
        >>> actions = DiscreteActions(3, names=("left", "right", "forward"))
        >>> actions.encode(2)
        tensor([0., 0., 1.])
        >>> actions.decode(torch.tensor([0.1, 0.7, 0.2]))
        1
        >>> actions.name(1)
        'right'
    """

    def __init__(self, num_actions: int, start: int = 0, names: Sequence[str] | None = None) -> None:
        check_int(num_actions, "num_actions", 1)
        if not isinstance(start, int) or isinstance(start, bool):
            raise ValueError(f"Expected argument `start` to be an int but got {start!r}")
        if names is not None and len(names) != num_actions:
            raise ValueError(f"Expected {num_actions} action `names` but got {len(names)}: {tuple(names)}")
        self.num_actions, self.start = num_actions, start
        self.names = None if names is None else tuple(names)

    @property
    def dim(self) -> int:
        """A = ``num_actions``."""
        return self.num_actions

    def encode(self, action: Any) -> Tensor:
        """The one-hot (A,) float32 vector of an integer action.

        Raises:
            ValueError: If ``action`` is not an integer in ``start .. start + num_actions - 1``.
        """
        index = _integer(action)
        if index is None or not 0 <= index - self.start < self.num_actions:
            raise ValueError(
                f"Expected an action id in {self.start} .. {self.start + self.num_actions - 1} but got {action!r}: "
                "the policy plays an action this encoding does not cover (pass a wider `action_encoder`)"
            )
        encoded = torch.zeros(self.num_actions)
        encoded[index - self.start] = 1.0
        return encoded

    def decode(self, encoded: Tensor) -> int:
        """The action id of the largest entry."""
        return int(torch.as_tensor(encoded).reshape(-1).argmax()) + self.start

    def sample(self, rng: np.random.Generator) -> int:
        """A uniformly random action id."""
        return int(rng.integers(self.num_actions)) + self.start

    def name(self, action: int) -> str:
        """The name of action ``action`` (its id as text without names)."""
        return str(action) if self.names is None else self.names[action - self.start]

    def __repr__(self) -> str:
        return f"DiscreteActions(num_actions={self.num_actions}, start={self.start})"


class BoxActions:
    """Continuous actions in a box ``low <= a <= high`` of any shape, flattened to (A,) float32 vectors.

    Args:
        low: Lower bounds, one per entry (broadcast to ``high``'s shape).
        high: Upper bounds, finite (random actions are drawn uniformly between the bounds).

    Raises:
        ValueError: If the bounds are not finite or ``low > high`` somewhere.

    Example:
        >>> actions = BoxActions(low=[-1.0, 0.0], high=[1.0, 0.5])
        >>> actions.dim
        2
        >>> actions.decode(actions.encode([0.25, 0.5]))
        array([0.25, 0.5 ], dtype=float32)
    """

    def __init__(self, low: Any, high: Any) -> None:
        high_a = np.asarray(high, dtype=np.float32)
        low_a = np.broadcast_to(np.asarray(low, dtype=np.float32), high_a.shape).copy()
        if not (np.isfinite(low_a).all() and np.isfinite(high_a).all()) or (low_a > high_a).any():
            raise ValueError(f"Expected finite action bounds with low <= high but got low={low_a}, high={high_a}")
        self.low, self.high = low_a, high_a

    @property
    def dim(self) -> int:
        """A: the number of entries of one action."""
        return int(self.high.size)

    def encode(self, action: Any) -> Tensor:
        """The flattened (A,) float32 vector of an action of the box's shape.

        Raises:
            ValueError: If ``action`` has another shape or non-finite entries.
        """
        value = np.asarray(action.detach().cpu() if isinstance(action, Tensor) else action, dtype=np.float32)
        if value.shape != self.high.shape or not np.isfinite(value).all():
            raise ValueError(f"Expected a finite action of shape {self.high.shape} but got {action!r}")
        return torch.from_numpy(value.reshape(-1).copy())

    def decode(self, encoded: Tensor) -> np.ndarray:
        """The float32 action of an (A,) vector, in the box's shape."""
        return torch.as_tensor(encoded, dtype=torch.float32).cpu().numpy().reshape(self.high.shape).copy()

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random action in the box."""
        return rng.uniform(self.low, self.high).astype(np.float32)

    def __repr__(self) -> str:
        return f"BoxActions(shape={self.high.shape})"


def action_encoder_for(action_space: Any) -> ActionEncoder:
    """The default encoding of a gymnasium action space: one-hot for ``Discrete``, flattened for ``Box``.

    Raises:
        TypeError: For any other space; pass an ``action_encoder`` then.

    Example:
        >>> from gymnasium.spaces import Discrete
        >>> action_encoder_for(Discrete(4))
        DiscreteActions(num_actions=4, start=0)
    """
    spaces = import_optional("gymnasium.spaces")
    if isinstance(action_space, spaces.Discrete):
        return DiscreteActions(int(action_space.n), start=int(action_space.start))
    if isinstance(action_space, spaces.Box):
        return BoxActions(action_space.low, action_space.high)
    raise TypeError(
        f"Expected a Discrete or Box action space to encode actions by default but got {action_space!r}: "
        "pass `action_encoder=` (an object with dim, encode, decode and sample)"
    )
