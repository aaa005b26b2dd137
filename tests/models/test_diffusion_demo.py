"""``simgate demo --model diffusion``: the demo trains the diffusion world model with the gate on."""

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from simgate_tracking.cli import build_parser
from simgate_tracking.models import DiffusionWorldModel
from simgate_tracking.toy.demo import run_demo


def test_demo_command_takes_the_model():
    assert build_parser().parse_args(["demo", "--model", "diffusion"]).model == "diffusion"
    assert build_parser().parse_args(["demo"]).model == "toy"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--model", "vae"])
    with pytest.raises(ValueError, match=r"`model` to be one of \('toy', 'diffusion'\) but got 'vae'"):
        run_demo(model="vae")


def test_diffusion_demo_trains_the_diffusion_model_with_the_gate_on(tmp_path, monkeypatch):
    lines = []
    trained = []
    fit = DiffusionWorldModel.training_step

    def counted(self, batch, batch_idx):
        trained.append(type(self).__name__)
        return fit(self, batch, batch_idx)

    monkeypatch.setattr(DiffusionWorldModel, "training_step", counted)
    run = run_demo(
        tmp_path, ["tensorboard"], 1, train_windows=16, progress_bar=False, write=lines.append, model="diffusion"
    )
    assert trained == ["DiffusionWorldModel"]  # one step of 16 windows, on the diffusion model
    assert "planning   off" in lines[0]
    assert run.checks == 1 and run.result.scores["reset_reproducibility"] == 1.0
    events = EventAccumulator(str(run.logger_dirs["tensorboard"]), size_guidance={"scalars": 0})
    events.Reload()
    assert [round(e.value, 6) for e in events.Scalars("simgate/min_axis")] == [round(run.result.min_axis, 6)]
