"""Training windows from played episodes: what a world model learns from, built like the probe set it is judged on."""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset

from simgate_tracking.probe import ProbeSet


class TrainingWindows(Dataset[dict[str, Tensor]]):
    """``(context, actions, future)`` windows: every branch of every episode of a probe set, one window each.

    Build the episodes with :func:`~simgate_tracking.probes.build_probe_set` from seeds apart from the probe set's,
    and a world model trains on the same frames, actions and horizon the gate scores it on. Items are dicts with
    ``context`` (T0, C, H, W), ``actions`` (T, A) and ``future`` (T, C, H, W), frames float in [0, 1] (uint8 frames
    are kept as they are and scaled on access), as :class:`~simgate_tracking.toy.ToyWorldModel` trains on them. With
    real takes, take 0 is used.

    Example:
        >>> from simgate_tracking.toy import make_probe_set
        >>> windows = TrainingWindows(make_probe_set(num_episodes=2, num_branches=3, horizon=4))
        >>> len(windows), {key: tuple(value.shape) for key, value in windows[0].items()}
        (6, {'context': (2, 3, 32, 32), 'actions': (4, 5), 'future': (4, 3, 32, 32)})
    """

    def __init__(self, episodes: ProbeSet) -> None:
        if not isinstance(episodes, ProbeSet):
            raise ValueError(f"Expected argument `episodes` to be a ProbeSet but got {type(episodes).__name__}")
        episodes = episodes.take(0) if episodes.num_takes > 1 else episodes
        self.context = episodes.context.repeat_interleave(episodes.num_branches, dim=0)
        self.actions = episodes.actions.flatten(0, 1).float()
        self.future = episodes.targets.flatten(0, 1)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            "context": _unit(self.context[index]),
            "actions": self.actions[index],
            "future": _unit(self.future[index]),
        }


def _unit(frames: Tensor) -> Tensor:
    return frames.float() if frames.is_floating_point() else frames.float() / 255.0
