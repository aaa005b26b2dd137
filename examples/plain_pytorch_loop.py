"""The simulator gate in a plain PyTorch training loop, without Lightning.

``simgate_tracking.evaluate(model, probe_set)`` runs the same rollouts and maths as the Lightning callback and
returns a ``GateResult``: call it wherever your loop validates. To get dashboards too, wrap the result in a
``GateCheck`` and hand it to a gate logger (TensorBoard here; ``WandbGateLogger(wandb.run)`` for W&B), with an
``AlertPolicy`` deciding which checks raise alerts.

    python examples/plain_pytorch_loop.py            # about a minute on a CPU
    python examples/plain_pytorch_loop.py --fast     # a few seconds
    tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from simgate_tracking import evaluate
from simgate_tracking.alerts import AlertPolicy
from simgate_tracking.report import GateCheck
from simgate_tracking.toy import ToyWorldDataset, ToyWorldModel, make_probe_set, reached_goal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a few seconds: tiny data, two short epochs")
    parser.add_argument("--out", default="runs", help="where TensorBoard logs and reports go")
    args = parser.parse_args()
    torch.manual_seed(0)

    data = DataLoader(ToyWorldDataset(32 if args.fast else 1024, horizon=8, seed=0), batch_size=16, shuffle=True)
    probe = make_probe_set(num_episodes=8 if args.fast else 24, num_branches=3, horizon=10, seed=0)
    model = ToyWorldModel()  # any nn.Module with rollout(context, actions, generator=None) works the same
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    from torch.utils.tensorboard import SummaryWriter  # optional: only for the dashboard

    from simgate_tracking.loggers import TensorBoardGateLogger

    run_dir = Path(args.out) / "plain_pytorch_loop"
    writer = SummaryWriter(str(run_dir))
    dashboard, alerts = TensorBoardGateLogger(writer), AlertPolicy()

    step = 0
    for epoch in range(2 if args.fast else 8):
        model.train()
        for batch in data:
            frames = model.rollout(batch["context"], batch["actions"])
            # the few pixels that move are what a simulator must get right: weight them up against the background
            moved = (batch["future"] - batch["context"][:, -1:]).abs().amax(dim=2, keepdim=True) > 0.05
            loss = ((1 + 10 * moved.float()) * (frames - batch["future"]).square()).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            writer.add_scalar("train/loss", loss.item(), step)

        # the gate: eval mode, no gradients and RNG states are handled (and restored) by evaluate()
        result = evaluate(model, probe, task_fn=reached_goal)
        check = GateCheck(
            result, step, epoch, probe.manifest_hash, probe.name, alerts=tuple(alerts.update(result, step))
        )
        dashboard.log_check(check)
        check.write(run_dir / "simgate")  # the JSON report `simgate report` reads
        print(f"epoch {epoch}, step {step}: loss {loss.item():.4f}")
        print(result)
        for alert in check.alerts:
            print(f"  ALERT {alert.level}: {alert.title}")

    writer.close()
    print(f"dashboards: tensorboard --logdir {args.out}    report: simgate report {run_dir}")


if __name__ == "__main__":
    torch.set_num_threads(1)  # a small model: one thread is fastest, and never thrashes a busy machine
    main()
