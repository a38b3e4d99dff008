"""Scores of dynamic-scene mapping on held-out traffic sequences (issue 30): moving-object detection by
background subtraction against the proposal baselines."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ...geometry import VoxelGrid
from .config import SubtractionConfig
from .detect import (
    centre_surround_proposals,
    frame_memories,
    moving_ap,
    moving_boxes_in_grid,
    random_proposals,
    subtract_background,
)

__all__ = ["evaluate_subtraction", "GROUPS"]

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
