"""``update`` never synchronises the device: no value of a tensor is read on the host while scores accumulate."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from simgate_tracking.metrics import (
    Controllability,
    DeltaPSNR,
    ObjectPersistence,
    ResetReproducibility,
    SimulatorScorecard,
    TaskValidity,
    TemporalConsistency,
    VisualFidelity,
)

# tensor methods that copy a value to the host: on an accelerator each one waits for the device
HOST_READS = {"item", "tolist", "numpy", "cpu", "nonzero", "__bool__", "__int__", "__float__", "__index__"}


class HostReads(TorchFunctionMode):
    """Records every tensor method call that reads a value on the host."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_READS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def bundle(device):
    g = torch.Generator().manual_seed(0)
    preds, target = torch.rand(4, 3, 5, 3, 16, 16, generator=g), torch.rand(4, 3, 5, 3, 16, 16, generator=g)
    masks = torch.zeros(4, 5, 2, 16, 16, dtype=torch.bool)
    masks[:, :, 0, 2:6, 2:6] = True
    masks[:, :, 1, 9:13, 8:12] = True
    outcomes = {"returns": torch.rand(4, generator=g), "success": torch.tensor([True, False, True, False])}
    groups = torch.tensor([0, 1, 2, 1])
    tensors = {"preds": preds, "target": target, "masks": masks, "groups": groups, **outcomes}
    return {name: value.to(device) for name, value in tensors.items()}


def updates(b):
    p, y = b["preds"], b["target"]
    # the tensor path, the one an accelerator takes (the CPU kernel reads host memory by design)
    card = SimulatorScorecard(task_mode="ranking", num_groups=3, episode_scores=True, cpu_kernel=False)
    return [
        (Controllability(episode_scores=True), (p, y), {}),
        (DeltaPSNR(), (p, y), {}),
        (VisualFidelity(), (p, y), {}),
        (TemporalConsistency(), (p[:, 0], y[:, 0]), {}),
        (ObjectPersistence(), (p[:, 0], y[:, 0], b["masks"]), {}),
        (ResetReproducibility(), (p[:, 0], p[:, 1], y[:, 0]), {}),
        (TaskValidity(), (b["returns"], b["success"]), {}),
        (TaskValidity(mode="ranking", num_groups=3), (b["returns"], b["returns"], b["groups"]), {}),
        (
            card,
            (p, y),
            {
                "second": p[:, 0],
                "masks": b["masks"],
                "task_pred": b["returns"],
                "task_real": b["returns"],
                "groups": b["groups"],
            },
        ),
    ]


@pytest.mark.parametrize("index", range(9))
def test_update_reads_no_tensor_value_on_the_host(index):
    metric, args, kwargs = updates(bundle("cpu"))[index]
    metric.update(*args, **kwargs)  # first call: lazy setup outside the check
    with HostReads() as spy:
        metric.update(*args, **kwargs)
    assert spy.calls == [], f"{type(metric).__name__}.update reads tensors on the host: {spy.calls}"


def test_the_host_read_check_sees_a_host_read():
    x = torch.ones(2)
    with HostReads() as spy:
        if x.sum() > 0:
            int(x[0])
    assert spy.calls == ["__bool__", "__int__"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("index", range(9))
def test_update_never_synchronises_the_gpu(index):
    metric, args, kwargs = updates(bundle("cuda"))[index]
    metric = metric.to("cuda")
    metric.update(*args, **kwargs)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        metric.update(*args, **kwargs)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in _values(metric.compute()))


def _values(scores):
    return scores.values() if isinstance(scores, dict) else [scores]
