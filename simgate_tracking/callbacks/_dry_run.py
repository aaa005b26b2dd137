"""One rollout before training starts, so a probe set that does not fit the model fails at once, not at epoch 1."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from simgate_tracking.probe import ProbeSet
from simgate_tracking.rollout import RolloutError, RolloutFn, preserved_rng, rollout_branch


def dry_rollout(probe_set: ProbeSet, rollout_fn: RolloutFn, pl_module: pl.LightningModule) -> None:
    """Roll out episode 0's reference branch in eval mode; RNG states and the module's mode are restored.

    Raises:
        RolloutError: If the rollout fails or its frames do not have the probe set's shape.
    """
    batch = next(probe_set.batches(1, device=pl_module.device))
    was_training = pl_module.training
    try:
        pl_module.eval()
        with torch.no_grad(), preserved_rng([pl_module.device]):
            rollout_branch(
                rollout_fn,
                batch.context,
                batch.actions[:, 0],
                probe_set.seeds[:1],
                (probe_set.horizon, *probe_set.frame_shape),
            )
    except Exception as err:  # the model's own error on inputs it cannot take is the same misfit
        raise RolloutError(
            f"The probe set {probe_set.name!r} does not fit the model: a dry rollout of episode 0 with "
            f"context {tuple(batch.context.shape)} and actions {tuple(batch.actions[:, 0].shape)} failed: "
            f"{type(err).__name__}: {err}"
        ) from err
    finally:
        pl_module.train(was_training)
