"""Train a small world model on a MiniGrid environment, with the simulator gate at every validation, on TensorBoard.

1. Build a probe set from the real environment: MiniGrid's expert plus random counterfactual branches from each
   seeded reset, object masks from the grid, success from the environment.
2. Score the environment as its own world model on it: every axis must be 1, so the probe set, the goal judge
   and the gate agree with the environment before any model is trained.
3. Collect (context, actions, future) windows from other seeds, train ``ToyWorldModel`` on them, and let
   ``SimulatorGateCallback`` score it as a simulator at every validation, next to the frame loss.

    python examples/minigrid_world_model.py            # several minutes on a CPU
    python examples/minigrid_world_model.py --fast     # about 20 seconds
    python examples/minigrid_world_model.py --env MiniGrid-DoorKey-5x5-v0 --num-actions 7 --horizon 16
    tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from simgate_tracking import evaluate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.probes import EnvironmentReplay, TrainingWindows, build_probe_set
from simgate_tracking.probes.minigrid import (
    go_to_goal,
    minigrid_actions,
    minigrid_env_fn,
    minigrid_objects,
    reached_goal,
)
from simgate_tracking.toy.model import ToyWorldModel

SIZE = (32, 32)
PROBE_SEEDS_FROM, TRAIN_SEEDS_FROM, VAL_SEEDS_FROM = 0, 10_000, 20_000  # disjoint resets


def collect(make_env, first_seed: int, num_episodes: int, args: argparse.Namespace) -> TrainingWindows:
    """Windows from ``num_episodes`` resets: the expert's branch and ``3`` seeded random branches each."""
    seeds = list(range(first_seed, first_seed + num_episodes))
    episodes = build_probe_set(
        make_env,
        seeds,
        go_to_goal,
        num_counterfactual=3,
        horizon=args.horizon,
        size=SIZE,
        action_encoder=minigrid_actions(args.num_actions),
        name="windows",
    )
    return TrainingWindows(episodes)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="MiniGrid-Empty-Random-5x5-v0", help="a MiniGrid environment id")
    parser.add_argument("--num-actions", type=int, default=3, help="MiniGrid actions the model sees (7: all)")
    parser.add_argument("--horizon", type=int, default=8, help="steps per rollout (the expert must reach the goal)")
    parser.add_argument("--out", default="runs", help="TensorBoard and report directory")
    parser.add_argument("--fast", action="store_true", help="a tiny run (about 20 seconds) that shows every step")
    args = parser.parse_args()
    args.probe_episodes, args.train_episodes, args.epochs = (4, 12, 1) if args.fast else (24, 120, 6)
    return args


def main() -> None:
    args = parse_args()
    L.seed_everything(0, verbose=False)
    make_env = minigrid_env_fn(args.env)
    actions = minigrid_actions(args.num_actions)

    probe = build_probe_set(
        make_env,
        seeds=list(range(PROBE_SEEDS_FROM, PROBE_SEEDS_FROM + args.probe_episodes)),
        reference_policy=go_to_goal,
        num_counterfactual=2,
        horizon=args.horizon,
        size=SIZE,
        action_encoder=actions,
        mask_extractor=minigrid_objects,
        name=args.env,
    )
    print(probe)
    reality = evaluate(EnvironmentReplay(make_env, action_encoder=actions), probe, task_fn=reached_goal)
    print("the environment as its own model:", {axis: round(s, 3) for axis, s in reality.scores.items()})
    if not reality.passed:
        raise SystemExit("the probe set disagrees with its own environment: check the judge and the horizon")

    train = collect(make_env, TRAIN_SEEDS_FROM, args.train_episodes, args)
    val = collect(make_env, VAL_SEEDS_FROM, max(args.train_episodes // 8, 2), args)
    model = ToyWorldModel(frame_shape=probe.frame_shape, action_dim=probe.action_dim, context_frames=1)
    gate = SimulatorGateCallback(probe, task_fn=reached_goal, num_sample_episodes=2)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        logger=TensorBoardLogger(args.out, name="minigrid"),
        callbacks=[gate],
        enable_checkpointing=False,
        log_every_n_steps=5,
        num_sanity_val_steps=0,
        enable_progress_bar=not args.fast,
        enable_model_summary=False,
    )
    trainer.fit(
        model,
        DataLoader(train, batch_size=16, shuffle=True),
        DataLoader(val, batch_size=16),
    )

    result = gate.history[-1]
    print("world model after training:", {axis: round(s, 3) for axis, s in result.scores.items()})
    print(f"weakest axis: {result.weakest_axis}, gate {'passed' if result.passed else 'failed'}")
    summary = Path(trainer.log_dir) / "simgate" / "summary.json"
    summary.write_text(json.dumps({"environment": reality.to_dict(), "model": result.to_dict()}, indent=2))
    print(f"TensorBoard: tensorboard --logdir {args.out}   reports: {summary.parent}")


if __name__ == "__main__":
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    main()
