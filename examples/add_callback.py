"""Add the simulator gate to an existing Lightning training run: one probe set, one callback.

The run below stands for yours: a LightningModule with a ``rollout(context, actions, generator=None)`` method
(here the built-in ``ToyWorldModel``), a datamodule, a logger. The only new lines are the probe set and
``SimulatorGateCallback``. After every validation the callback scores the model on the probe set, puts
``simgate/<axis>`` and ``simgate/min_axis`` in ``trainer.callback_metrics``, writes a JSON report, and sends curves,
rollout GIFs and alerts to the Trainer's TensorBoard and W&B loggers.

    python examples/add_callback.py            # about a minute on a CPU
    python examples/add_callback.py --fast     # a few seconds
    tensorboard --logdir runs
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.toy import ToyWorldDataModule, ToyWorldModel, make_probe_set, reached_goal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a few seconds: tiny data, one epoch")
    parser.add_argument("--out", default="runs", help="where TensorBoard logs go")
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)

    # your run, as it was
    data = ToyWorldDataModule(train_windows=32 if args.fast else 1024, val_windows=16, batch_size=16)
    model = ToyWorldModel(frame_shape=(3, 32, 32), action_dim=5, context_frames=2)
    logger = TensorBoardLogger(args.out, name="add_callback")

    # the new lines: a fixed probe set (same episodes at every check) and the callback
    probe = make_probe_set(num_episodes=8 if args.fast else 24, num_branches=3, horizon=10, seed=0)
    gate = SimulatorGateCallback(probe, threshold=0.65, task_fn=reached_goal)

    trainer = L.Trainer(
        max_epochs=1 if args.fast else 8,
        logger=logger,
        callbacks=[gate],
        enable_checkpointing=False,
        enable_progress_bar=not args.fast,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(model, datamodule=data)

    for check, result in enumerate(gate.history, start=1):
        print(f"check {check}: min_axis {result.min_axis:.3f}, weakest {result.weakest_axis}")
    print(gate.history[-1])
    print("in trainer.callback_metrics:", sorted(k for k in trainer.callback_metrics if k.startswith("simgate/")))
    print(f"reports: {gate.report_dir}    dashboards: tensorboard --logdir {args.out}")


if __name__ == "__main__":
    torch.set_num_threads(1)  # a small model: one thread is fastest, and never thrashes a busy machine
    main()
