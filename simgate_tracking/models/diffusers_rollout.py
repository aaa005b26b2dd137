"""A diffusers denoiser and scheduler as a world model's ``rollout``: autoregressive, seeded per episode."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from simgate_tracking._utils import check_positive_int

DenoiseFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
SampleRange = tuple[float, float]


def import_diffusers() -> Any:
    """The ``diffusers`` package, or a ``ModuleNotFoundError`` that names the extra to install.

    Example:
        >>> hasattr(import_diffusers(), "UNet2DModel")
        True
    """
    try:
        import diffusers
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "Diffusion world models need `diffusers`, which is not installed: pip install simgate-tracking[diffusion]"
        ) from err
    return diffusers


def check_sample_range(sample_range: object) -> SampleRange:
    """``sample_range`` as a float pair ``low < high``.

    Raises:
        ValueError: If it is not a pair of finite numbers with ``low < high``.

    Example:
        >>> check_sample_range((-1, 1))
        (-1.0, 1.0)
    """
    if (
        not isinstance(sample_range, (tuple, list))
        or len(sample_range) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sample_range)
        or not float(sample_range[0]) < float(sample_range[1])
    ):
        raise ValueError(
            f"Expected argument `sample_range` to be a pair (low, high) with low < high but got {sample_range!r}"
        )
    return float(sample_range[0]), float(sample_range[1])


class DiffusersRollout:
    r"""Wrap a diffusers denoiser and scheduler as ``rollout(context, actions, generator=None) -> frames``.

    The world model samples one frame per action, autoregressively: frame :math:`t` is denoised from pure noise by
    the scheduler, conditioned on the last ``context_frames`` frames (real context first, then the model's own
    frames) and on action :math:`a_t`. How context and actions enter the network is the one thing a user writes,
    as ``denoise(sample, timestep, history, action) -> model_output``:

    - ``sample`` (B, C, H, W): the noisy frame, already scaled by ``scheduler.scale_model_input``;
    - ``timestep``: the scheduler's current timestep (a scalar tensor), as its ``step`` expects it;
    - ``history`` (B, context_frames, C, H, W): the frames the next one follows, in ``sample_range``;
    - ``action`` (B, A): the action that leads to the next frame;
    - ``model_output`` (B, C, H, W): what the scheduler's ``step`` takes (noise, v or x0, per its config).

    Every random number comes from diffusers' ``randn_tensor(..., generator=generator)``: the initial noise of every
    frame and whatever the scheduler's ``step`` draws. With the gate's ``generator`` list (one generator per
    episode, seeded from the episode's seed) this gives three guarantees:

    - the same reset and seed give bitwise the same rollout (as the gate's reset pass replays a batch); in a batch of
      other episodes the noise is the same too and the frames agree to float rounding (kernels may sum in another
      order for another batch size);
    - the reference and counterfactual branches of an episode draw the same noise, so they differ only through
      their actions;
    - another seed gives another sample.

    With ``generator=None`` the noise comes from torch's global RNG, which the gate also seeds per batch.
    On CUDA the denoiser runs under bf16 autocast (``autocast=True``); the scheduler's arithmetic stays float32.
    Sampling runs without gradients.

    Args:
        denoise: The conditioning: ``denoise(sample, timestep, history, action) -> model_output``, see above.
        scheduler: A diffusers scheduler (``EDMEulerScheduler``, ``DDIMScheduler``, ``EulerDiscreteScheduler``, ...).
        context_frames: T0, frames the denoiser sees before the one it makes; ``context`` may hold more (the last
            ``context_frames`` are used).
        num_inference_steps: Denoising steps per frame; the gate's cost grows with it (see the diffusion page).
        sample_range: The values frames span inside the denoiser; frames in [0, 1] are mapped to it and back, and
            samples are clamped to it. Diffusers' convention is (-1, 1).
        autocast: Run the denoiser under bf16 autocast on CUDA.

    Raises:
        ValueError: If an argument is out of range, or ``scheduler`` lacks ``set_timesteps``, ``timesteps``,
            ``scale_model_input`` or ``step``.

    Example:
        >>> import torch
        >>> from diffusers import DDIMScheduler
        >>> def denoise(sample, timestep, history, action):  # a stand-in network: predicts no noise
        ...     return torch.zeros_like(sample)
        >>> rollout = DiffusersRollout(denoise, DDIMScheduler(), context_frames=1, num_inference_steps=2)
        >>> context, actions = torch.rand(2, 1, 3, 8, 8), torch.zeros(2, 4, 5)
        >>> seeds = [torch.Generator().manual_seed(s) for s in (7, 7)]
        >>> frames = rollout(context, actions, generator=seeds)
        >>> tuple(frames.shape), torch.equal(frames[0], frames[1])  # one seed, one sample
        ((2, 4, 3, 8, 8), True)
    """

    def __init__(
        self,
        denoise: DenoiseFn,
        scheduler: Any,
        context_frames: int = 1,
        num_inference_steps: int = 3,
        sample_range: SampleRange = (-1.0, 1.0),
        autocast: bool = True,
    ) -> None:
        if not callable(denoise):
            raise ValueError(f"Expected argument `denoise` to be callable but got {type(denoise).__name__}")
        missing = [name for name in ("set_timesteps", "scale_model_input", "step") if not hasattr(scheduler, name)]
        if missing:
            raise ValueError(
                f"Expected argument `scheduler` to be a diffusers scheduler (with set_timesteps, scale_model_input and "
                f"step) but got {type(scheduler).__name__} without {', '.join(missing)}"
            )
        if not isinstance(autocast, bool):
            raise ValueError(f"Expected argument `autocast` to be a bool but got {autocast!r}")
        self.denoise = denoise
        self.scheduler = scheduler
        self.context_frames = check_positive_int(context_frames, "context_frames")
        self.num_inference_steps = check_positive_int(num_inference_steps, "num_inference_steps")
        self.sample_range = check_sample_range(sample_range)
        self.autocast = autocast
        # not every scheduler's step draws noise; those that do take the generator list
        self._step_takes_generator = "generator" in inspect.signature(scheduler.step).parameters

    def _check_inputs(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None) -> None:
        if not isinstance(context, Tensor) or context.ndim != 5 or context.shape[1] < self.context_frames:
            got = tuple(context.shape) if isinstance(context, Tensor) else type(context).__name__
            raise ValueError(
                f"Expected `context` of shape (B, T0, C, H, W) with T0 >= {self.context_frames} but got {got}"
            )
        if not isinstance(actions, Tensor) or actions.ndim != 3 or actions.shape[0] != context.shape[0]:
            got = tuple(actions.shape) if isinstance(actions, Tensor) else type(actions).__name__
            raise ValueError(f"Expected `actions` of shape (B, T, A) = ({context.shape[0]}, T, A) but got {got}")
        if generator is not None and (not isinstance(generator, list) or len(generator) != context.shape[0]):
            given = f"{len(generator)} generators" if isinstance(generator, list) else type(generator).__name__
            raise ValueError(
                f"Expected `generator` to be a list of {context.shape[0]} torch.Generator (one per episode) "
                f"but got {given}"
            )

    def to_samples(self, frames: Tensor) -> Tensor:
        """Frames in [0, 1] (float, or uint8 0..255) mapped to ``sample_range``, float32."""
        frames = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        low, high = self.sample_range
        return frames * (high - low) + low

    def to_frames(self, samples: Tensor) -> Tensor:
        """Samples in ``sample_range`` mapped back to frames in [0, 1]."""
        low, high = self.sample_range
        return (samples - low) / (high - low)

    @torch.no_grad()
    def __call__(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """Sample ``T`` frames from ``context`` under ``actions``: (B, T0, C, H, W), (B, T, A) -> (B, T, C, H, W).

        Raises:
            ValueError: If the shapes do not fit, or ``generator`` is not one generator per episode.
        """
        self._check_inputs(context, actions, generator)
        history = self.to_samples(context[:, -self.context_frames :])
        frames = []
        for action in actions.float().unbind(dim=1):
            frame = self.sample_frame(history, action, generator)
            frames.append(frame)
            history = torch.cat([history[:, 1:], frame.unsqueeze(1)], dim=1)
        return self.to_frames(torch.stack(frames, dim=1))

    def sample_frame(self, history: Tensor, action: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """One frame denoised from fresh noise: (B, T0, C, H, W) history in ``sample_range``, (B, A) -> (B, C, H, W)."""
        randn_tensor = import_diffusers().utils.torch_utils.randn_tensor
        scheduler, device = self.scheduler, history.device
        scheduler.set_timesteps(self.num_inference_steps, device=device)
        shape = (history.shape[0], *history.shape[2:])
        sample = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        sample = sample * scheduler.init_noise_sigma
        step_options = {"generator": generator} if self._step_takes_generator else {}
        use_autocast = self.autocast and device.type == "cuda"
        for timestep in scheduler.timesteps:
            scaled = scheduler.scale_model_input(sample, timestep)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_autocast):
                output = self.denoise(scaled, timestep, history, action)
            # the scheduler's update in float32 whatever the denoiser ran in
            sample = scheduler.step(output.float(), timestep, sample, **step_options).prev_sample.float()
        return sample.clamp(*self.sample_range)
