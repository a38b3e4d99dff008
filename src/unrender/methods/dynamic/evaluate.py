"""Scores of dynamic-scene mapping on held-out traffic sequences (issue 30): moving-object detection by
background subtraction against the proposal baselines; 3D flow between consecutive frames against zero
flow."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ...geometry import VoxelGrid
from ...nn.flow import soft_argmax_flow
from .config import DynamicConfig, SubtractionConfig
from .data import DynamicDataset
from .detect import (
    centre_surround_proposals,
    frame_memories,
    moving_ap,
    moving_boxes_in_grid,
    random_proposals,
    subtract_background,
)
from .model import memory_input

__all__ = ["evaluate_dynamic", "evaluate_subtraction", "evaluate_flow", "raw_features", "GROUPS"]

GROUPS = {"vehicles": ("car", "van"), "people": ("pedestrian", "cyclist")}
"""Object groups scored on their own besides all moving objects together."""


def evaluate_subtraction(
    items: Iterable[dict[str, torch.Tensor]], grid: VoxelGrid, cfg: SubtractionConfig, *, proposals: int = 50,
    seed: int = 0, min_pixels: int = 1,
) -> dict[str, float]:  # fmt: skip
    """AP@0.25 / 0.5 (3D and bird's-eye view) of moving-object boxes over every frame of the sequences:

    * ``subtraction/size``: background subtraction's boxes scored by their number of moving voxels;
    * ``subtraction/contrast``: the same boxes rescored by centre-surround contrast on the frame's occupancy;
    * ``centre_surround``: car-sized boxes slid over the frame's occupancy, scored by contrast alone;
    * ``random``: ``proposals`` car-sized boxes per frame at random places and yaws, random scores.

    The ground truth: the moving objects whose centre is in the grid and that ``min_pixels`` pixels show
    (:func:`moving_boxes_in_grid`). Each group of :data:`GROUPS` is also scored against its own objects
    (``<row>/<group>/AP...``) with every box the method gave: a box on another group's object counts as a
    false positive there, so a group's AP is a lower bound.

    Args:
        items: :class:`~unrender.methods.dynamic.data.DynamicDataset` items.
    """
    gen = torch.Generator().manual_seed(seed)
    rows: dict[str, tuple[list, list]] = {}
    gts: dict[str, list[torch.Tensor]] = {"all": [], **{g: [] for g in GROUPS}}
    for item in items:
        frames = frame_memories(item, grid)
        out = subtract_background(frames, grid, cfg)
        T = item["rgb"].shape[0]
        gts["all"] += moving_boxes_in_grid(item, grid, min_pixels)
        for g, names in GROUPS.items():
            gts[g] += moving_boxes_in_grid(item, grid, min_pixels, classes=names)
        for t in range(T):
            found = {
                "subtraction/size": (out["boxes"][t], out["size"][t]),
                "subtraction/contrast": (out["boxes"][t], out["contrast"][t]),
                "centre_surround": centre_surround_proposals(frames["carved"][t, 0], grid, shell=cfg.shell),
                "random": random_proposals(grid, proposals, gen),
            }
            for name, (b, s) in found.items():
                rows.setdefault(name, ([], []))
                rows[name][0].append(b)
                rows[name][1].append(s)
    res: dict[str, float] = {"frames": float(len(gts["all"])), "objects": float(sum(len(b) for b in gts["all"]))}
    for g, gt in gts.items():
        if g != "all":
            res[f"objects/{g}"] = float(sum(len(b) for b in gt))
    for name, (boxes, scores) in rows.items():
        for g, gt in gts.items():
            key = name if g == "all" else f"{name}/{g}"
            for kind in ("3d", "bev"):
                for k, v in moving_ap(boxes, scores, gt, iou_type=kind).items():
                    res[f"{key}/{k}"] = v
    return res


def raw_features(frames: dict[str, torch.Tensor]) -> torch.Tensor:
    """The input memory (occupancy, occupancy x colour) of :func:`frame_memories` as features ``(T, 4, Z, Y,
    X)``: the no-learning baseline of correlation flow (colour centred on the voxel's own occupancy so that
    two empty voxels do not match better than two surfaces)."""
    return memory_input(frames["input"])[:, :4]


def evaluate_flow(
    items: Iterable[dict[str, torch.Tensor]],
    grid: VoxelGrid,
    features: dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]],
    *,
    radius: int = 3,
    temperature: float = 1.0,
) -> dict[str, float]:
    """3D end-point error (metres) of the flow from each frame to the next, on the voxels where frame ``t``
    saw a surface (a depth point fell in them), split into those inside a moving object and the rest.

    Each entry of ``features`` maps the frames' memories (:func:`frame_memories`: all in the anchor grid, so
    the ego-motion is already removed and static matter stays put) to feature volumes ``(T, C, Z, Y, X)``;
    its flow is :func:`~unrender.nn.flow.soft_argmax_flow` between consecutive frames (``radius`` voxels
    reach). ``zero`` is the flow that says nothing moves.

    Returns:
        ``<name>/epe_moving``, ``<name>/epe_static`` per entry and ``zero/...``, and ``voxels/moving``,
        ``voxels/static`` (how many voxels each mean is over).
    """
    vs = torch.tensor(grid.voxel_size)[:, None]
    err: dict[str, dict[str, list[torch.Tensor]]] = {}
    counts = {"moving": 0, "static": 0}
    for item in items:
        frames = frame_memories(item, grid)
        surface = frames["carved"][:-1, 0] > 0  # (T - 1, Z, Y, X)
        moving = item["moving"][:-1, 0] & surface
        static = ~item["moving"][:-1, 0] & surface
        true = item["flow"]  # (T - 1, 3, Z, Y, X) metres
        counts["moving"] += int(moving.sum())
        counts["static"] += int(static.sum())
        preds = {"zero": torch.zeros_like(true)}
        for name, fn in features.items():
            f = fn(frames)
            preds[name] = torch.stack([
                (soft_argmax_flow(f[t], f[t + 1], radius, temperature=temperature).reshape(3, -1) * vs).reshape(
                    true.shape[1:]) for t in range(len(true))])  # fmt: skip
        for name, pred in preds.items():
            e = (pred - true).norm(dim=1)  # (T - 1, Z, Y, X)
            err.setdefault(name, {"moving": [], "static": []})
            err[name]["moving"].append(e[moving])
            err[name]["static"].append(e[static])
    res: dict[str, float] = {f"voxels/{k}": float(v) for k, v in counts.items()}
    for name, parts in err.items():
        for k, v in parts.items():
            cat = torch.cat(v)
            res[f"{name}/epe_{k}"] = float(cat.mean()) if len(cat) else float("nan")
    return res


@torch.no_grad()
def evaluate_dynamic(model: torch.nn.Module, cfg: DynamicConfig, device: torch.device) -> dict[str, float]:
    """The trained features' flow (``features/...``) next to zero flow and raw-input correlation, and
    moving-object AP (``detect/...``: background subtraction and the proposal baselines), on the held-out
    sequences."""
    model.eval()
    seqs = DynamicDataset(cfg.data, "val")
    items = [seqs[i] for i in range(len(seqs))]
    core = getattr(model, "module", model)

    def learned(frames: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([core.encode(x[None].to(device))["features"].cpu() for x in frames["input"]])

    fc = cfg.flow
    res = evaluate_flow(items, core.grid, {"features": learned, "raw": raw_features}, radius=fc.radius,
                        temperature=fc.temperature)  # fmt: skip
    res.update({f"detect/{k}": v for k, v in evaluate_subtraction(items, core.grid, cfg.subtraction).items()})
    return res
