"""Moving voxels from a frame and its neighbours in time: weak labels from occupancy changes
(:func:`~unrender.methods.dynamic.background.moved_voxels`), and a small 3D net trained on them alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...geometry import VoxelGrid
from ...nn import FeatureNet3D
from .background import changed_features, moved_voxels, neighbour_frames
from .config import SegmenterConfig
from .detect import frame_memories
from .model import MEMORY_CHANNELS, memory_input

__all__ = ["weak_moving_labels", "segmenter_input", "MovingSegmenter", "fit_segmenter", "evaluate_segmentation"]


def weak_moving_labels(frames: dict[str, torch.Tensor], *, gap: int, dilation: int) -> dict[str, torch.Tensor]:
    """Weak labels of the moving voxels of every frame and the voxels they speak for.

    Args:
        frames: :func:`~unrender.methods.dynamic.detect.frame_memories` of a sequence.

    Returns:
        ``labels (T, 1, Z, Y, X)`` bool: a surface at ``t`` whose neighbourhood is carved free ``gap`` frames
        before or after (:func:`moved_voxels`); ``counted (T, 1, Z, Y, X)`` bool: the voxels with a surface at
        ``t`` that frame ``t - gap`` or ``t + gap`` observed (carved occupied or free): only there can a change
        be seen.
    """
    carved, known = frames["carved"], frames["known"]
    T = len(carved)
    seen_other = torch.zeros_like(known)
    for t in range(T):
        for other in neighbour_frames(t, T, gap):
            seen_other[t] |= known[other]
    return {"labels": moved_voxels(carved, known, gap=gap, dilation=dilation), "counted": (carved > 0) & seen_other}


def segmenter_input(inputs: torch.Tensor, t: int, gap: int) -> torch.Tensor:
    """The segmenter's view of frame ``t``: its memory and those of frames ``t - gap`` and ``t + gap`` (zeros
    where the sequence has none), each through :func:`memory_input`.

    Args:
        inputs: ``(T, 7, Z, Y, X)`` (``frame_memories(...)["input"]``).

    Returns:
        ``(21, Z, Y, X)``.
    """
    T = len(inputs)
    parts = [inputs[k] if 0 <= k < T else torch.zeros_like(inputs[t]) for k in (t, t - gap, t + gap)]
    return memory_input(torch.stack(parts)).reshape(-1, *inputs.shape[-3:])


class MovingSegmenter(nn.Module):
    """A small 3D U-Net: :func:`segmenter_input` -> moving-voxel logits ``(B, 1, Z, Y, X)``."""

    def __init__(self, channels: Sequence[int] = (8, 16)):
        super().__init__()
        self.net = FeatureNet3D(cin=3 * MEMORY_CHANNELS, channels=tuple(channels), unet=True)
        self.head = nn.Conv3d(channels[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h,), _ = self.net(x)
        return self.head(h)


def _prepared(items: Sequence[dict[str, torch.Tensor]], grid: VoxelGrid, cfg: SegmenterConfig) -> list[dict]:
    out = []
    for item in items:
        frames = frame_memories(item, grid)
        out.append({"input": frames["input"], "carved": frames["carved"], "known": frames["known"],
                    **weak_moving_labels(frames, gap=cfg.gap, dilation=cfg.dilation)})  # fmt: skip
    return out


def fit_segmenter(
    items: Sequence[dict[str, torch.Tensor]], grid: VoxelGrid, cfg: SegmenterConfig, *, progress: bool = True
) -> MovingSegmenter:
    """Train a :class:`MovingSegmenter` on the weak labels of ``items`` (no ground truth of motion enters):
    ``cfg.steps`` Adam steps of ``cfg.batch`` random frames, binary cross-entropy over each frame's counted
    voxels with the positives weighted up by the ratio of negatives to positives (capped at 50)."""
    if not items:
        raise ValueError("fit_segmenter: no sequences to train on")
    data = _prepared(items, grid, cfg)
    pos = sum(int((d["labels"] & d["counted"]).sum()) for d in data)
    neg = sum(int((~d["labels"] & d["counted"]).sum()) for d in data)
    pos_weight = torch.tensor(min(50.0, neg / max(pos, 1)))
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = MovingSegmenter(cfg.channels)
    with torch.enable_grad():  # called from evaluation, which runs without gradients
        _fit(model, data, cfg, pos_weight, gen, progress)
    return model.eval()


def _fit(model: MovingSegmenter, data: list[dict], cfg: SegmenterConfig, pos_weight: torch.Tensor,
         gen: torch.Generator, progress: bool) -> None:  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    for _ in tqdm(range(cfg.steps), desc="fit moving-voxel segmenter", disable=not progress, dynamic_ncols=True):
        picks = [(int(torch.randint(len(data), (1,), generator=gen)), None) for _ in range(cfg.batch)]
        picks = [(i, int(torch.randint(len(data[i]["input"]), (1,), generator=gen))) for i, _ in picks]
        x = torch.stack([segmenter_input(data[i]["input"], t, cfg.gap) for i, t in picks])
        y = torch.stack([data[i]["labels"][t] for i, t in picks]).float()
        w = torch.stack([data[i]["counted"][t] for i, t in picks]).float()
        loss = (F.binary_cross_entropy_with_logits(model(x), y, pos_weight=pos_weight, reduction="none") * w).sum()
        loss = loss / w.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def evaluate_segmentation(
    items: Sequence[dict[str, torch.Tensor]], grid: VoxelGrid, model: MovingSegmenter | None, cfg: SegmenterConfig,
    *, features: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
) -> dict[str, float]:  # fmt: skip
    """Voxel IoU against the true moving voxels, over every frame's counted voxels (:func:`weak_moving_labels`),
    of the weak labels themselves (``weak/iou``), of the segmenter's (``net/iou``, logits > 0) and, given
    ``features`` (frames -> ``(T, F, Z, Y, X)``, as :func:`~unrender.methods.dynamic.evaluate.evaluate_flow`'s),
    of the weak labels from feature changes (``weak_features/iou``: :func:`changed_features` with
    ``cfg.feature_threshold``); ``voxels``: how many voxels were counted, ``moving``: how many truly move."""
    inter: dict[str, int] = {}
    union: dict[str, int] = {}
    counted_n = moving_n = 0
    for item, d in zip(items, _prepared(items, grid, cfg), strict=True):
        truth = item["moving"]
        preds = {"weak": d["labels"]}
        if features is not None:
            f = features(frame_memories(item, grid))
            preds["weak_features"] = changed_features(f, d["carved"], d["known"], gap=cfg.gap,
                                                      threshold=cfg.feature_threshold)  # fmt: skip
        if model is not None:
            x = torch.stack([segmenter_input(d["input"], t, cfg.gap) for t in range(len(d["input"]))])
            preds["net"] = model(x) > 0
        c = d["counted"]
        counted_n += int(c.sum())
        moving_n += int((truth & c).sum())
        for k, p in preds.items():
            inter[k] = inter.get(k, 0) + int((p & truth & c).sum())
            union[k] = union.get(k, 0) + int(((p | truth) & c).sum())
    res = {"voxels": float(counted_n), "moving": float(moving_n)}
    for k in inter:
        res[f"{k}/iou"] = inter[k] / union[k] if union[k] else float("nan")
    return res
