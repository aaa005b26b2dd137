"""The same maths as the scorecard's update, written the naive way: a Python loop over episodes and frames.

It is the baseline the vectorised update is compared with, and a second implementation to check it against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from benchmarks.bundle import Bundle

EPS = 1e-8


def _clamp01(x: float) -> float:
    return min(max(x, 0.0), 1.0)


def _finite(frames: Tensor) -> bool:
    return all(bool(torch.isfinite(frame).all()) for frame in frames)


def controllability(p: Tensor, y: Tensor) -> float:
    """One episode, (K+1, T, C, H, W): mean over k of conc(P_k - P_0, Y_k - Y_0), frame by frame sums."""
    scores = []
    for k in range(1, p.shape[0]):
        inner = model_energy = real_energy = 0.0
        for t in range(p.shape[1]):
            x, d = p[k, t] - p[0, t], y[k, t] - y[0, t]
            inner += float((x * d).sum())
            model_energy += float((x * x).sum())
            real_energy += float((d * d).sum())
        scores.append(_clamp01((2 * inner + EPS) / (model_energy + real_energy + EPS)))
    return sum(scores) / len(scores) if _finite(p.flatten(0, 1)) else 0.0


def delta_psnr(p: Tensor, y: Tensor) -> float:
    """One episode: mean over branches of PSNR(P_k, Y_k) - PSNR(P_{k+1}, Y_k)."""
    branches, numel = p.shape[0], p[0].numel()
    deltas = []
    for k in range(branches):
        right = other = 0.0
        for t in range(p.shape[1]):
            right += float((p[k, t] - y[k, t]).square().sum())
            other += float((p[(k + 1) % branches, t] - y[k, t]).square().sum())
        deltas.append(10 * math.log10(max(other / numel, 1e-10)) - 10 * math.log10(max(right / numel, 1e-10)))
    return sum(deltas) / branches


def temporal_consistency(p: Tensor, y: Tensor) -> float:
    """One episode, (T, C, H, W): conc(dP, dY) summed over every step before the ratio."""
    inner = model_energy = real_energy = 0.0
    for t in range(1, p.shape[0]):
        x, d = p[t] - p[t - 1], y[t] - y[t - 1]
        inner += float((x * d).sum())
        model_energy += float((x * x).sum())
        real_energy += float((d * d).sum())
    return _clamp01((2 * inner + EPS) / (model_energy + real_energy + EPS)) if _finite(p) else 0.0


def reset_reproducibility(first: Tensor, second: Tensor, y: Tensor) -> float:
    """One episode: 1 - |P1 - P2|^2 / (2 |Y - mean_t Y|^2 + eps)."""
    mean = sum(y[t] for t in range(y.shape[0])) / y.shape[0]
    drift = sum(float((first[t] - second[t]).square().sum()) for t in range(y.shape[0]))
    scale = 2 * sum(float((y[t] - mean).square().sum()) for t in range(y.shape[0]))
    return _clamp01(1 - drift / (scale + EPS)) if _finite(first) and _finite(second) else 0.0


def _presence(p: Tensor, y: Tensor, mask: Tensor, share: float) -> float:
    """One object at one step: 1 - share |(P - Y) M|^2 / |(Y - B) M|^2, B the mean real colour of its ring."""
    grown = F.max_pool2d(mask[None, None].float(), kernel_size=3, stride=1, padding=1)[0, 0] > 0
    ring = grown & ~mask
    background = y[:, ring].sum(dim=1) / max(int(ring.sum()), 1)
    error = float((p[:, mask] - y[:, mask]).square().sum())
    contrast = float((y[:, mask] - background[:, None]).square().sum())
    return _clamp01(1 - share * error / (contrast + EPS))


def object_persistence(p: Tensor, y: Tensor, masks: Tensor, visible: Tensor) -> float | None:
    """One episode, masks (T, N, H, W): its weakest track's worst visible step; None if no object shows."""
    tracks = []
    for n in range(masks.shape[1]):
        steps = [t for t in range(masks.shape[0]) if bool(visible[t, n]) and bool(masks[t, n].any())]
        if not steps:
            continue
        largest = max(int(masks[t, n].sum()) for t in steps)
        tracks.append(min(_presence(p[t], y[t], masks[t, n], int(masks[t, n].sum()) / largest) for t in steps))
    if not tracks:
        return None
    return min(tracks) if _finite(p) else 0.0


def task_validity(pred: Tensor, real: Tensor) -> float:
    """Informedness TPR + TNR - 1 of success judged on model futures, clamped at 0."""
    counts = {"tp": 0, "fn": 0, "tn": 0, "fp": 0}
    for said, truth in zip(pred.tolist(), real.tolist(), strict=True):
        counts[("t" if said == truth else "f") + ("p" if said else "n")] += 1
    tpr = counts["tp"] / (counts["tp"] + counts["fn"]) if counts["tp"] + counts["fn"] else 1.0
    tnr = counts["tn"] / (counts["tn"] + counts["fp"]) if counts["tn"] + counts["fp"] else 1.0
    return max(tpr + tnr - 1, 0.0)


def scorecard(bundle: Bundle) -> dict[str, float]:
    """Every axis the scorecard's update measures (frame quality aside), episode by episode, frame by frame."""
    p, y = bundle.preds.float(), bundle.target.float()
    second = bundle.second.float()
    columns: dict[str, list[float]] = {name: [] for name in ("controllability", "delta_psnr", "temporal", "reset")}
    persistence: list[float] = []
    for b in range(p.shape[0]):
        columns["controllability"].append(controllability(p[b], y[b]))
        columns["delta_psnr"].append(delta_psnr(p[b], y[b]))
        columns["temporal"].append(temporal_consistency(p[b, 0], y[b, 0]))
        columns["reset"].append(reset_reproducibility(p[b, 0], second[b], y[b, 0]))
        score = object_persistence(p[b, 0], y[b, 0], bundle.masks[b], bundle.visible[b])
        if score is not None:
            persistence.append(score)
    return {
        "controllability": sum(columns["controllability"]) / len(columns["controllability"]),
        "temporal_consistency": sum(columns["temporal"]) / len(columns["temporal"]),
        "object_persistence": sum(persistence) / len(persistence),
        "reset_reproducibility": sum(columns["reset"]) / len(columns["reset"]),
        "task_validity": task_validity(bundle.task_pred, bundle.task_real),
        "delta_psnr": sum(columns["delta_psnr"]) / len(columns["delta_psnr"]),
    }
