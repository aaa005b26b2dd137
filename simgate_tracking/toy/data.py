"""Training data from the toy world: (context, actions, future) windows of random episodes, fixed by a seed."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from simgate_tracking._utils import check_int
from simgate_tracking.toy.policies import POLICIES, policy_actions
from simgate_tracking.toy.probes import TRAIN_STREAM, VAL_STREAM, episode_seed
from simgate_tracking.toy.world import ACTIONS, ToyWorld


class ToyWorldDataset(Dataset[dict[str, Tensor]]):
    """Windows of random toy-world episodes, as the world model trains on them.

    Each window resets the world from its own seed (never a probe set's), shows ``context_frames`` frames, then
    follows a policy drawn at random (seek the goal, wander, flee) for ``horizon`` steps. Items are dicts:
    ``context`` (T0, 3, H, W) and ``future`` (T, 3, H, W) float in [0, 1], ``actions`` (T, 5) one-hot float.
    Frames are kept as uint8 in memory and scaled on access. A ``stochastic`` world plays take 0 of every window
    (its resets are never a probe set's, so no probe take's randomness is ever seen in training).

    Args:
        num_windows: How many windows.
        horizon: T, future steps per window.
        context_frames: T0, frames before the first action.
        size: Frame side in pixels, 32 to 64.
        num_objects: Coloured objects, 2 to 4.
        seed: The dataset's seed.
        stream: Which reset stream the seeds come from; training and validation use different ones.
        stochastic: Train on the stochastic world, whose blue object walks at random.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> data = ToyWorldDataset(num_windows=4, horizon=6, seed=0)
        >>> {name: tuple(x.shape) for name, x in data[0].items()}
        {'context': (2, 3, 32, 32), 'actions': (6, 5), 'future': (6, 3, 32, 32)}
    """

    def __init__(
        self,
        num_windows: int,
        horizon: int = 8,
        context_frames: int = 2,
        size: int = 32,
        num_objects: int = 2,
        seed: int = 0,
        stream: int = TRAIN_STREAM,
        stochastic: bool = False,
    ) -> None:
        check_int(num_windows, "num_windows")
        check_int(horizon, "horizon")
        check_int(context_frames, "context_frames")
        world = ToyWorld(size=size, num_objects=num_objects, stochastic=stochastic)
        contexts, actions, futures = [], [], []
        for i in range(num_windows):
            reset = episode_seed(seed, i, stream)
            rng = np.random.default_rng([reset, 2])
            state = world.reset(reset)
            policy = POLICIES[int(rng.integers(len(POLICIES)))]
            chosen = policy_actions(world, state, policy, horizon, rng)
            episode = world.episode(reset, chosen, context_frames)
            contexts.append(episode.context)
            futures.append(episode.future)
            actions.append(np.eye(len(ACTIONS), dtype=np.float32)[chosen])
        # uint8 keeps a few thousand windows in tens of megabytes; the toy world's colours survive the rounding
        self.context = torch.from_numpy(np.round(np.stack(contexts) * 255).astype(np.uint8))
        self.future = torch.from_numpy(np.round(np.stack(futures) * 255).astype(np.uint8))
        self.actions = torch.from_numpy(np.stack(actions))

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            "context": self.context[index].float() / 255.0,
            "actions": self.actions[index],
            "future": self.future[index].float() / 255.0,
        }


class ToyWorldDataModule(L.LightningDataModule):
    """Training and validation windows of the toy world for a Lightning ``Trainer``.

    Args:
        train_windows: Training windows.
        val_windows: Validation windows (other resets than training and probes).
        batch_size: Windows per batch.
        horizon: T, future steps per window.
        context_frames: T0, frames before the first action.
        size: Frame side in pixels, 32 to 64.
        num_objects: Coloured objects, 2 to 4.
        seed: The seed of both datasets and of the shuffling.
        stochastic: Train on the stochastic world, whose blue object walks at random.

    Raises:
        ValueError: If an argument is out of range.

    Example:
        >>> data = ToyWorldDataModule(train_windows=8, val_windows=4, batch_size=4, horizon=5)
        >>> data.setup("fit")
        >>> batch = next(iter(data.train_dataloader()))
        >>> tuple(batch["context"].shape), tuple(batch["actions"].shape), tuple(batch["future"].shape)
        ((4, 2, 3, 32, 32), (4, 5, 5), (4, 5, 3, 32, 32))
    """

    def __init__(
        self,
        train_windows: int = 1024,
        val_windows: int = 64,
        batch_size: int = 32,
        horizon: int = 8,
        context_frames: int = 2,
        size: int = 32,
        num_objects: int = 2,
        seed: int = 0,
        stochastic: bool = False,
    ) -> None:
        super().__init__()
        check_int(train_windows, "train_windows")
        check_int(val_windows, "val_windows")
        check_int(batch_size, "batch_size")
        ToyWorld(size=size, num_objects=num_objects, stochastic=stochastic)  # checks the world's arguments now
        self.save_hyperparameters()
        self.train_windows, self.val_windows, self.batch_size = train_windows, val_windows, batch_size
        self.horizon, self.context_frames, self.size = horizon, context_frames, size
        self.num_objects, self.seed, self.stochastic = num_objects, seed, stochastic
        self.train_set: ToyWorldDataset | None = None
        self.val_set: ToyWorldDataset | None = None

    def _dataset(self, num_windows: int, stream: int) -> ToyWorldDataset:
        return ToyWorldDataset(
            num_windows,
            self.horizon,
            self.context_frames,
            self.size,
            self.num_objects,
            self.seed,
            stream=stream,
            stochastic=self.stochastic,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets once; later calls (every stage) reuse them."""
        if self.train_set is None:
            self.train_set = self._dataset(self.train_windows, TRAIN_STREAM)
            self.val_set = self._dataset(self.val_windows, VAL_STREAM)

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Shuffled training batches, in an order fixed by the seed."""
        self.setup()
        assert self.train_set is not None  # for the type checker: setup() built it
        shuffle = torch.Generator().manual_seed(int(self.seed))
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=shuffle)

    def val_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Validation batches, in order."""
        self.setup()
        assert self.val_set is not None  # for the type checker: setup() built it
        return DataLoader(self.val_set, batch_size=self.batch_size)
