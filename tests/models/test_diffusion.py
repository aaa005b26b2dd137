"""The diffusion world model and the diffusers adapter: seeded per episode, branches share noise, bad input named."""

import pytest
import torch

pytest.importorskip("diffusers")

from diffusers import DDIMScheduler, EulerAncestralDiscreteScheduler, UNet2DModel

from simgate_tracking import evaluate
from simgate_tracking.models import DiffusersRollout, DiffusionWorldModel
from simgate_tracking.toy import make_probe_set

FRAME = (3, 16, 16)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _model(frame_shape=FRAME, **options):
    torch.manual_seed(0)
    model = DiffusionWorldModel(
        frame_shape=frame_shape, action_dim=5, context_frames=2, num_inference_steps=2, **options
    )
    return model.eval()


def _generators(seeds, device="cpu"):
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]


def _inputs(batch=3, steps=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    context = torch.rand(batch, 2, *FRAME, generator=g)
    actions = torch.eye(5)[torch.randint(5, (batch, steps), generator=g)]
    return context, actions


def test_same_reset_and_seed_give_bitwise_the_same_rollout_and_another_seed_another_sample():
    model = _model()
    context, actions = _inputs()
    first = model.rollout(context, actions, _generators([5, 6, 7]))
    torch.rand(100)  # the global RNG moves on between the passes: the generators alone decide the noise
    second = model.rollout(context, actions, _generators([5, 6, 7]))
    other = model.rollout(context, actions, _generators([8, 6, 7]))
    assert torch.equal(first, second)
    assert (first[0] - other[0]).abs().mean() > 0.01  # another seed: another sample
    assert torch.equal(first[1:], other[1:])  # and only that episode's
    assert first.min() >= 0 and first.max() <= 1 and first.dtype == torch.float32


def test_reference_and_counterfactual_branches_share_their_noise_and_differ_through_actions():
    drawn = []
    model = _model()

    def recording(sample, timestep, history, action):
        drawn.append(sample)
        return model.denoise(sample, timestep, history, action)

    rollout = DiffusersRollout(recording, model.scheduler, context_frames=2, num_inference_steps=2)
    context, actions = _inputs(batch=2)
    # as the gate calls it: the reference branch per batch, then K = 2 counterfactual branches in one call of B * K
    reference = rollout(context, actions, _generators([3, 4]))
    first_noise = drawn[0]
    drawn.clear()
    other = torch.roll(actions, 1, dims=2)
    same_and_other = torch.stack([actions, other], dim=1).flatten(0, 1)
    branches = rollout(context.repeat_interleave(2, dim=0), same_and_other, _generators([3, 3, 4, 4]))
    assert torch.equal(drawn[0][0::2], first_noise) and torch.equal(drawn[0][1::2], first_noise)
    # same actions, same noise: the same frames (a batch of another size may round sums in another order)
    torch.testing.assert_close(branches[0::2], reference, atol=1e-5, rtol=0)
    assert (branches[1::2] - reference).abs().amax() > 1e-3  # other actions: another future


def test_the_gate_sees_a_reproducible_diffusion_model():
    probe = make_probe_set(num_episodes=3, num_branches=2, horizon=3, seed=1)
    result = evaluate(_model(probe.frame_shape), probe, batch_size=2)
    assert result.scores["reset_reproducibility"] == 1.0  # the reset pass replays every batch bitwise


class _UsersDenoiser(torch.nn.Module):
    """A user's own diffusers UNet: discrete actions as class labels, context frames on the channels."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.unet = UNet2DModel(
            sample_size=16,
            in_channels=6,
            out_channels=3,
            block_out_channels=(8, 16),
            norm_num_groups=4,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
            layers_per_block=1,
            num_class_embeds=5,
            add_attention=False,
        )

    def conditioning(self, sample, timestep, history, action):
        return self.unet(torch.cat([sample, history[:, -1]], dim=1), timestep, class_labels=action.argmax(1)).sample


@pytest.mark.parametrize("scheduler", ["ddim", "euler_ancestral"])
def test_a_users_denoiser_and_scheduler_roll_out_with_the_same_guarantees(scheduler):
    denoiser = _UsersDenoiser().eval()
    # an ancestral sampler draws fresh noise at every step: it must come from the episode's generator too
    made = DDIMScheduler() if scheduler == "ddim" else EulerAncestralDiscreteScheduler()
    rollout = DiffusersRollout(denoiser.conditioning, made, context_frames=1, num_inference_steps=3)
    context, actions = _inputs(batch=2, steps=3)
    first = rollout(context, actions, _generators([1, 2]))
    torch.manual_seed(123)
    assert torch.equal(first, rollout(context, actions, _generators([1, 2])))
    assert (first - rollout(context, actions, _generators([9, 2]))).abs()[0].mean() > 0.01
    probe = make_probe_set(num_episodes=2, num_branches=2, horizon=2, seed=2)
    assert evaluate(rollout, probe).scores["reset_reproducibility"] == 1.0


def test_training_lowers_the_denoising_loss():
    model = _model()
    context, actions = _inputs(batch=4, steps=3)
    batch = {"context": context, "actions": actions, "future": torch.rand(4, 3, *FRAME).round()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        torch.manual_seed(0)  # the same noise levels each step: the change is the weights'
        loss = model._loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"frame_shape": (3, 16)}, "frame_shape"),
        ({"frame_shape": (3, 15, 16)}, "frame_shape"),
        ({"channels": (12, 32)}, "channels"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"sigma_min": 5.0, "sigma_max": 1.0}, "sigma_max"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"motion_weight": -1.0}, "motion_weight"),
        ({"autocast": "yes"}, "autocast"),
    ],
)
def test_bad_arguments_raise_naming_the_field(options, named):
    arguments = {"frame_shape": FRAME, "action_dim": 5, "context_frames": 2, **options}
    with pytest.raises(ValueError, match=f"`{named}`"):
        DiffusionWorldModel(**arguments)


def test_bad_rollout_inputs_raise_naming_what_was_expected_and_given():
    model = _model()
    context, actions = _inputs(batch=2)
    with pytest.raises(ValueError, match=r"`context` of shape .* but got \(2, 1, 3, 16, 16\)"):
        model.rollout(context[:, :1], actions)
    with pytest.raises(ValueError, match=r"`actions` of shape \(B, T, A\) = \(2, T, 5\) but got \(2, 4, 3\)"):
        model.rollout(context, actions[..., :3])
    with pytest.raises(ValueError, match="`generator` to be a list of 2 torch.Generator .* but got 1 generators"):
        model.rollout(context, actions, _generators([1]))
    with pytest.raises(ValueError, match="`scheduler` .* without set_timesteps, scale_model_input, step"):
        DiffusersRollout(model.denoise, object())
    with pytest.raises(ValueError, match="`sample_range`"):
        DiffusersRollout(model.denoise, model.scheduler, sample_range=(1, -1))


@CUDA
def test_cuda_rollout_runs_the_unet_in_bf16_and_stays_reproducible():
    model = _model().to("cuda")
    seen = []
    model.unet.conv_in.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    context, actions = (x.to("cuda") for x in _inputs())
    first = model.rollout(context, actions, _generators([5, 6, 7], "cuda"))
    second = model.rollout(context, actions, _generators([5, 6, 7], "cuda"))
    other = model.rollout(context, actions, _generators([8, 6, 7], "cuda"))
    assert set(seen) == {torch.bfloat16}
    assert first.dtype == torch.float32 and first.device.type == "cuda"
    assert torch.equal(first, second)
    assert (first[0] - other[0]).abs().mean() > 0.01
    probe = make_probe_set(num_episodes=3, num_branches=2, horizon=3, seed=1)
    result = evaluate(_model(probe.frame_shape).to("cuda"), probe, batch_size=2, device="cuda")
    assert result.scores["reset_reproducibility"] == 1.0


def test_diffusion_benchmark_times_rollouts_inside_the_gate_and_the_fit_around_it():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/ sits beside the tests
    from benchmarks.diffusion import diffusion_share, diffusion_table

    share = diffusion_share(steps=1, epochs=1, train_windows=16, episodes=2)
    assert share.checks == 1
    assert 0 < share.rollout_seconds < share.gate_seconds < share.training_seconds
    table = diffusion_table([share])
    assert table.splitlines()[3].split()[0] == "1" and "under 10% of training time" in table
    assert 0 < share.step_seconds and share.train_steps == 1 and 0 < share.fraction < 1
