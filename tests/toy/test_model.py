"""ToyWorldModel: a real Lightning fit on toy-world windows, any frame shape and action size, clear shape errors."""

import lightning as L
import pytest
import torch

from simgate_tracking import evaluate
from simgate_tracking.toy import make_probe_set
from simgate_tracking.toy.data import ToyWorldDataModule
from simgate_tracking.toy.model import ToyWorldModel


def test_untrained_model_copies_the_last_context_frame_and_ignores_actions():
    model = ToyWorldModel()
    probe = make_probe_set(num_episodes=4, num_branches=2, horizon=5, seed=0)
    frames = model.rollout(probe.context, probe.actions[:, 0])
    assert torch.allclose(frames, probe.context[:, -1:].expand_as(frames), atol=2e-3)
    result = evaluate(model, probe)
    assert result.scores["controllability"] < 0.01
    assert not result.passed


def test_a_short_fit_lowers_the_loss_and_makes_the_model_answer_actions(tmp_path):
    torch.manual_seed(0)
    data = ToyWorldDataModule(train_windows=96, val_windows=16, batch_size=16, horizon=4, seed=0)
    model = ToyWorldModel(hidden_channels=16, state_channels=16)
    probe = make_probe_set(num_episodes=6, num_branches=2, horizon=4, seed=0)
    before = evaluate(model, probe)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=20,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    first_loss = model._loss(next(iter(data.train_dataloader()))).item()
    trainer.fit(model, datamodule=data)
    assert trainer.callback_metrics["val/loss"] < 0.6 * first_loss
    after = evaluate(model, probe)
    assert after.scores["controllability"] > before.scores["controllability"] + 0.02
    assert after.extras["delta_psnr"] > before.extras["delta_psnr"]


@pytest.mark.parametrize(("frame_shape", "action_dim"), [((3, 56, 56), 7), ((3, 33, 40), 3), ((1, 32, 32), 2)])
def test_any_frame_shape_and_action_size(frame_shape, action_dim):
    model = ToyWorldModel(frame_shape=frame_shape, action_dim=action_dim, context_frames=1, hidden_channels=8)
    frames = model.rollout(torch.rand(2, 1, *frame_shape), torch.rand(2, 3, action_dim))
    assert frames.shape == (2, 3, *frame_shape)
    assert frames.min() >= 0 and frames.max() <= 1
    batch = {"context": torch.rand(2, 1, *frame_shape), "actions": torch.rand(2, 3, action_dim)}
    batch["future"] = torch.rand(2, 3, *frame_shape)
    model._loss(batch).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("context", "actions", "message"),
    [
        (
            torch.rand(2, 3, 3, 32, 32),
            torch.rand(2, 4, 5),
            r"`context` of shape \(B, T0, C, H, W\) = \(B, 2, 3, 32, 32\)",
        ),
        (torch.rand(2, 2, 3, 32, 32), torch.rand(2, 4, 6), r"`actions` of shape \(B, T, A\) = \(2, T, 5\)"),
        (torch.rand(2, 2, 3, 32, 32), torch.rand(3, 4, 5), r"`actions` of shape \(B, T, A\) = \(2, T, 5\)"),
    ],
)
def test_rollout_names_the_input_that_does_not_fit(context, actions, message):
    with pytest.raises(ValueError, match=message):
        ToyWorldModel().rollout(context, actions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_shape": (32, 32)}, "`frame_shape` to be \\(C, H, W\\)"),
        ({"action_dim": 0}, "`action_dim` to be a positive int"),
        ({"learning_rate": 0.0}, "`learning_rate` to be a positive float"),
        ({"motion_weight": -1.0}, "`motion_weight` to be a float >= 0"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToyWorldModel(**kwargs)
