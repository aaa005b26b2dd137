"""Train a small world model on MuJoCo's Pusher robot, with the simulator gate at every validation, on TensorBoard.

1. Build a probe set from the real robot: from each seeded reset, a reference torque sequence and random
   counterfactual ones, exact masks of the object and the goal from MuJoCo's segmentation (the arm hides the
   object it pushes: the seed's occlusion case, for a robot).
2. Score the robot as its own world model on it: every axis must be 1, so the probe set and the gate agree with
   the simulator before any model is trained.
3. Collect (context, actions, future) windows from other seeds, train ``ToyWorldModel`` on them, and let
   ``SimulatorGateCallback`` score it as a simulator at every validation, next to the frame loss.

The task (object within the goal radius) takes far longer than a probe's horizon, so no branch reaches it and
task validity has nothing to tell apart: the gate scores the four other axes. Shadows are switched off: in software
OpenGL they cost five times the rest of a frame and change no pixel the gate looks at.

    python examples/pusher_world_model.py            # several minutes on a CPU
    python examples/pusher_world_model.py --fast     # under a minute
    tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from simgate_tracking import evaluate
from simgate_tracking.callbacks import SimulatorGateCallback
from simgate_tracking.probes import EnvironmentReplay, TrainingWindows, build_probe_set
from simgate_tracking.probes.mujoco import mujoco_env_fn, mujoco_objects
from simgate_tracking.toy.model import ToyWorldModel

RENDER, SIZE = 96, (48, 48)  # rendered square, then stored at half size (antialiased)
CAMERA = {"trackbodyid": -1, "distance": 1.8, "elevation": -60.0, "azimuth": 135.0, "lookat": [0.2, -0.3, 0.0]}
PROBE_SEEDS_FROM, TRAIN_SEEDS_FROM, VAL_SEEDS_FROM = 0, 10_000, 20_000  # disjoint resets


def _pusher(make: Any) -> Any:
    env = make()
    env.unwrapped.model.light_castshadow[:] = 0  # shadows: 5x the frame's cost in software GL, nothing for the gate
    return env


def pusher_env_fn() -> Any:
    """Pusher-v5 rendering headless, seen from above the table so the object and the goal are a few pixels wide."""
    return functools.partial(_pusher, mujoco_env_fn("Pusher-v5", RENDER, RENDER, default_camera_config=CAMERA))


def flail(observation: Any, env: Any, rng: np.random.Generator) -> np.ndarray:
    """Seeded random torques on the arm's seven joints: the reference branch and the training data's policy."""
    return rng.uniform(-2.0, 2.0, 7).astype(np.float32)


def collect(make_env: Any, first_seed: int, num_episodes: int, args: argparse.Namespace) -> TrainingWindows:
    """Windows from ``num_episodes`` resets: the reference branch and 3 random branches each."""
    episodes = build_probe_set(
        make_env,
        list(range(first_seed, first_seed + num_episodes)),
        flail,
        num_counterfactual=3,
        horizon=args.horizon,
        context_frames=2,
        size=SIZE,
        name="windows",
    )
    return TrainingWindows(episodes)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizon", type=int, default=8, help="steps per rollout (0.05 s of simulated time each)")
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
    make_env = pusher_env_fn()

    probe = build_probe_set(
        make_env,
        seeds=list(range(PROBE_SEEDS_FROM, PROBE_SEEDS_FROM + args.probe_episodes)),
        reference_policy=flail,
        num_counterfactual=2,
        horizon=args.horizon,
        context_frames=2,
        size=SIZE,
        mask_extractor=mujoco_objects,  # the object and the goal; the arm's links are the robot, not objects
        name="Pusher-v5",
    )
    print(probe)
    reality = evaluate(EnvironmentReplay(make_env, reference_policy=flail), probe)
    print("the environment as its own model:", {axis: round(s, 3) for axis, s in reality.scores.items()})
    if not reality.passed or min(reality.scores.values()) < 0.99:
        raise SystemExit("the probe set disagrees with its own environment: check the masks and the horizon")

    train = collect(make_env, TRAIN_SEEDS_FROM, args.train_episodes, args)
    val = collect(make_env, VAL_SEEDS_FROM, max(args.train_episodes // 8, 1), args)
    model = ToyWorldModel(frame_shape=probe.frame_shape, action_dim=probe.action_dim, context_frames=2)
    gate = SimulatorGateCallback(probe, num_sample_episodes=2)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        logger=TensorBoardLogger(args.out, name="pusher"),
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
