"""Train a small world model on highway-env, with the simulator gate at every validation, on TensorBoard.

1. Build a probe set from the real road: from each seeded reset, the ego vehicle keeps its lane (the reference)
   or takes random meta-actions (lane changes, speed changes), with one mask per vehicle projected through the
   environment's own viewer, and the outcome of every branch: a crash or none.
2. Score the road as its own world model on it: every axis must be 1, so the probe set, the crash judge (crashed
   vehicles are drawn red) and the gate agree with the environment before any model is trained.
3. Collect (context, actions, future) windows from other seeds, train ``ToyWorldModel`` on them, and let
   ``SimulatorGateCallback`` score it as a simulator at every validation, next to the frame loss.

This is the seed's own setting: a driving scene, where a model that drops a vehicle it cannot track fails object
persistence however sharp its frames.

    python examples/highway_world_model.py            # several minutes on a CPU
    python examples/highway_world_model.py --fast     # under a minute
    tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torch.utils.data import DataLoader

from simgate_tracking import evaluate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.probes import EnvironmentReplay, TrainingWindows, build_probe_set
from simgate_tracking.probes.highway import highway_env_fn, highway_objects, no_crash
from simgate_tracking.toy.model import ToyWorldModel

SIZE = (32, 64)  # (H, W): the 128 x 64 screen at half size
ROAD = {"screen_width": 128, "screen_height": 64, "scaling": 3.0, "vehicles_count": 10, "vehicles_density": 2.0}
IDLE = 1  # highway-env's meta-actions: 0 lane left, 1 idle, 2 lane right, 3 faster, 4 slower
PROBE_SEEDS_FROM, TRAIN_SEEDS_FROM, VAL_SEEDS_FROM = 0, 10_000, 20_000  # disjoint resets


def keep_lane(observation: Any, env: Any, rng: Any) -> int:
    """The reference branch: keep the lane and the speed; the counterfactual branches act at random."""
    return IDLE


def no_crash_seen(frames: Tensor) -> Tensor:
    """The crash judge on frames: no vehicle drawn in highway-env's crash red (255, 100, 100) in the last frame.

    (B, T, 3, H, W) float in [0, 1] or uint8 -> (B,) bool; on real frames it is :func:`no_crash` exactly.
    """
    last = frames[:, -1].float() / 255.0 if frames.dtype == torch.uint8 else frames[:, -1].float()
    red = (last[:, 0] > 0.75) & (last[:, 1] < 0.6) & (last[:, 2] < 0.6)
    return red.flatten(1).sum(dim=1) < 3


def collect(make_env: Any, first_seed: int, num_episodes: int, args: argparse.Namespace) -> TrainingWindows:
    """Windows from ``num_episodes`` resets: the reference branch and 3 random branches each."""
    episodes = build_probe_set(
        make_env,
        list(range(first_seed, first_seed + num_episodes)),
        keep_lane,
        num_counterfactual=3,
        horizon=args.horizon,
        context_frames=2,
        size=SIZE,
        name="windows",
    )
    return TrainingWindows(episodes)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizon", type=int, default=8, help="steps per rollout (one simulated second each)")
    parser.add_argument("--out", default="runs", help="TensorBoard and report directory")
    parser.add_argument("--fast", action="store_true", help="a tiny run (under a minute) that shows every step")
    args = parser.parse_args()
    if args.horizon < 2:
        parser.error(f"Expected argument `--horizon` to be an int >= 2 but got {args.horizon}")
    args.probe_episodes, args.train_episodes, args.epochs = (3, 8, 2) if args.fast else (16, 64, 5)
    if args.fast:
        args.horizon = min(args.horizon, 6)
    return args


def main() -> None:
    args = parse_args()
    L.seed_everything(0, verbose=False)
    make_env = highway_env_fn("highway-fast-v0", **ROAD)

    probe = build_probe_set(
        make_env,
        seeds=list(range(PROBE_SEEDS_FROM, PROBE_SEEDS_FROM + args.probe_episodes)),
        reference_policy=keep_lane,
        num_counterfactual=2,
        horizon=args.horizon,
        context_frames=2,
        size=SIZE,
        mask_extractor=highway_objects,  # one mask per vehicle, the vehicle itself its identity
        success_fn=no_crash,
        name="highway-fast-v0",
    )
    print(probe)
    replay = EnvironmentReplay(make_env, reference_policy=keep_lane)
    reality = evaluate(replay, probe, task_fn=no_crash_seen)
    print("the environment as its own model:", {axis: round(s, 3) for axis, s in reality.scores.items()})
    if not reality.passed or min(reality.scores.values()) < 0.99:
        raise SystemExit("the probe set disagrees with its own environment: check the crash judge and the horizon")

    train = collect(make_env, TRAIN_SEEDS_FROM, args.train_episodes, args)
    val = collect(make_env, VAL_SEEDS_FROM, max(args.train_episodes // 8, 1), args)
    model = ToyWorldModel(frame_shape=probe.frame_shape, action_dim=probe.action_dim, context_frames=2)
    gate = SimulatorGateCallback(probe, task_fn=no_crash_seen, num_sample_episodes=2)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        logger=TensorBoardLogger(args.out, name="highway"),
        callbacks=[gate],
        enable_checkpointing=False,
        log_every_n_steps=5,
        num_sanity_val_steps=0,
        enable_progress_bar=not args.fast,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(train, batch_size=16, shuffle=True), DataLoader(val, batch_size=16))

    result = gate.history[-1]
    print("world model after training:", {axis: round(s, 3) for axis, s in result.scores.items()})
    print(f"weakest axis: {result.weakest_axis}, gate {'passed' if result.passed else 'failed'}")
    summary = Path(trainer.log_dir) / "simgate" / "summary.json"
    summary.write_text(json.dumps({"environment": reality.to_dict(), "model": result.to_dict()}, indent=2))
    print(f"TensorBoard: tensorboard --logdir {args.out}   reports: {summary.parent}")


if __name__ == "__main__":
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    main()
