"""Stop training and choose checkpoints on the simulator gate, not on the frame loss.

Three callbacks read the gate's verdicts:

- Lightning's ``ModelCheckpoint(monitor="simgate/min_axis", mode="max")`` keeps the checkpoint whose weakest axis
  is best: the most usable simulator, which is not always the one with the lowest frame loss;
- Lightning's ``EarlyStopping(monitor="simgate/min_axis", mode="max")`` stops when the weakest axis stops improving;
- ``GateEarlyStopping(patience=..., grace_checks=...)`` stops after that many failing checks in a row, once the
  grace period for an untrained model is over.

At the end the best checkpoint is loaded back and scored again: the same probe set gives the same score.

    python examples/early_stopping_and_checkpoints.py            # a minute or two on a CPU
    python examples/early_stopping_and_checkpoints.py --fast     # a few seconds
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from simgate_tracking import evaluate
from simgate_tracking.callbacks import GateEarlyStopping, SimulatorGateCallback
from simgate_tracking.toy import ToyWorldDataModule, ToyWorldModel, make_probe_set, reached_goal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a few seconds: tiny data, three short epochs")
    parser.add_argument("--out", default="runs", help="where logs and checkpoints go")
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)

    probe = make_probe_set(num_episodes=8 if args.fast else 24, num_branches=3, horizon=10, seed=0)
    data = ToyWorldDataModule(train_windows=32 if args.fast else 1024, val_windows=16, batch_size=16)
    gate = SimulatorGateCallback(probe, task_fn=reached_goal)
    best = ModelCheckpoint(monitor="simgate/min_axis", mode="max", save_top_k=1, filename="best-{epoch:02d}")
    plateau = EarlyStopping(monitor="simgate/min_axis", mode="max", patience=3, min_delta=0.005)
    failing = GateEarlyStopping(patience=4, grace_checks=2 if args.fast else 6)

    trainer = L.Trainer(
        max_epochs=3 if args.fast else 20,
        logger=CSVLogger(args.out, name="early_stopping"),
        callbacks=[gate, best, plateau, failing],  # the gate first: the others read what it puts in callback_metrics
        enable_progress_bar=not args.fast,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(ToyWorldModel(), datamodule=data)

    print("min_axis at each check:", [round(result.min_axis, 3) for result in gate.history])
    if failing.reason:
        print("GateEarlyStopping:", failing.reason)
    elif plateau.stopped_epoch:
        print(f"EarlyStopping: the weakest axis stopped improving at epoch {plateau.stopped_epoch}")
    print(f"best checkpoint: {best.best_model_path} (simgate/min_axis = {float(best.best_model_score):.3f})")

    restored = ToyWorldModel.load_from_checkpoint(best.best_model_path)
    again = evaluate(restored, probe, task_fn=reached_goal)
    print(f"the best checkpoint scored again: min_axis {again.min_axis:.3f}, weakest {again.weakest_axis}")
    if abs(again.min_axis - float(best.best_model_score)) > 1e-4:
        raise SystemExit("the restored checkpoint does not score what it scored in training")


if __name__ == "__main__":
    torch.set_num_threads(1)  # a small model: one thread is fastest, and never thrashes a busy machine
    main()
