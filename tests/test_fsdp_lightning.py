"""The gate callback in a Lightning ``Trainer`` with FSDP2 on 2 CPU processes (gloo): ``ModelParallelStrategy``.

Lightning's ``FSDPStrategy`` refuses a CPU accelerator; its ``ModelParallelStrategy`` (FSDP2, ``fully_shard`` in
``configure_model``) runs on CPU. It launches its processes by running the script again, so the fit runs as
``python -m tests.test_fsdp_lightning <dir>`` in a subprocess with a deadline. The toy world model's encoder, dynamics
and decoder are sharded: every rollout gathers them, in the gate's rollouts and in the planning probe's.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from simgate_tracking import evaluate
from simgate_tracking.planning import PlanningProbe
from simgate_tracking.toy import make_probe_set
from simgate_tracking.toy.data import ToyWorldDataModule
from simgate_tracking.toy.model import ToyWorldModel
from simgate_tracking.toy.planning import ToyPlanningEnvironment, toy_goal_progress
from simgate_tracking.toy.task import reached_goal

ROOT = Path(__file__).resolve().parents[1]
EPISODES = 7  # shards of 4 and 3 episodes before padding
DEADLINE_S = 240


class ShardedToyWorldModel(ToyWorldModel):
    """The toy world model with its three parts sharded by ``fully_shard``; it counts its encoder's calls."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(hidden_channels=8, state_channels=8)
        with torch.no_grad():  # untrained, the model would copy its context: a model that uses its actions
            for parameter in self.decoder.parameters():
                parameter.normal_(0.0, 0.1)
        self.calls = 0
        self.encoder.register_forward_pre_hook(self._count)

    def _count(self, module: Any, inputs: Any) -> None:
        self.calls += 1

    def configure_model(self) -> None:
        from torch.distributed.fsdp import fully_shard

        for part in (self.encoder, self.dynamics, self.decoder):
            fully_shard(part, mesh=self.device_mesh["data_parallel"])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.0)  # the gate must see the model the test scores alone


def _probe_set():
    return make_probe_set(num_episodes=EPISODES, horizon=4)


def _planning_probe():
    return PlanningProbe(
        ToyPlanningEnvironment(), toy_goal_progress, seeds=[0, 2], max_steps=4, horizon=3, candidates=4
    )


def _fit(out: Path) -> None:
    """The fit each process runs; writes what it saw to ``out/rank-<r>.json``."""
    import lightning.pytorch as pl
    from lightning.pytorch.strategies import ModelParallelStrategy

    from simgate_tracking.callbacks import SimulatorGateCallback

    gate = SimulatorGateCallback(
        _probe_set(),
        batch_size=1,
        task_fn=reached_goal,
        planning_probe=_planning_probe(),
        planning_every_n_checks=1,
        num_sample_episodes=0,
        report_dir=out / "reports",
    )
    trainer = pl.Trainer(
        default_root_dir=out,
        accelerator="cpu",
        devices=2,
        strategy=ModelParallelStrategy(timeout=datetime.timedelta(seconds=60)),
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        callbacks=[gate],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = ShardedToyWorldModel()
    trainer.fit(model, datamodule=ToyWorldDataModule(train_windows=2, val_windows=2, batch_size=2, horizon=4))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("simgate/")}
    (out / f"rank-{trainer.global_rank}.json").write_text(json.dumps({"metrics": metrics, "calls": model.calls}))


@pytest.fixture(scope="module")
def fsdp_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdp_fit")
    command = [sys.executable, "-m", "tests.test_fsdp_lightning", str(out)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the 2-process FSDP fit did not finish within {DEADLINE_S} s: a collective is waiting")
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((out / f"rank-{rank}.json").read_text()) for rank in range(2)]


def test_fsdp_trainer_gate_equals_single_process(fsdp_fit):
    model = ToyWorldModel(hidden_channels=8, state_channels=8)
    model.load_state_dict(ShardedToyWorldModel().state_dict())
    single = evaluate(model, _probe_set(), task_fn=reached_goal, batch_size=1)
    for rank in range(2):
        for axis, score in single.scores.items():
            assert fsdp_fit[rank]["metrics"][f"simgate/{axis}"] == pytest.approx(float(score), abs=1e-6), axis


def test_planning_probe_runs_with_sharded_parameters(fsdp_fit):
    model = ToyWorldModel(hidden_channels=8, state_channels=8)
    model.load_state_dict(ShardedToyWorldModel().state_dict())
    alone = _planning_probe().run(model.eval(), device=torch.device("cpu"))
    for rank in range(2):
        assert fsdp_fit[rank]["metrics"]["simgate/planning_success"] == pytest.approx(alone.success_rate)
        assert fsdp_fit[rank]["metrics"]["simgate/planning_success_real"] == pytest.approx(alone.success_rate_real)


def test_every_rank_makes_the_same_world_model_calls(fsdp_fit):
    # the dry run, the padded gate rollouts and rank zero's planning calls, made by both ranks
    assert fsdp_fit[0]["calls"] == fsdp_fit[1]["calls"] > 1 + 3 * 4


if __name__ == "__main__":
    _fit(Path(sys.argv[1]))
