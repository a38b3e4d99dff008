"""``dynamic``: neural 3D mapping of scenes that move: a street seen over time by a rig of RGB-D cameras on
an ego car, fused frame by frame into one anchor grid; a 3D feature net trained for occupancy and for
parameter-free correlation flow; background subtraction for what moves (issue 30)."""

from __future__ import annotations

from ..base import Method
from .config import PRESETS, DynamicConfig
from .data import DynamicDataset, DynamicFrames
from .evaluate import evaluate_dynamic, results_table
from .losses import dynamic_losses
from .model import DynamicNet


def build_dataset(cfg: DynamicConfig, split: str) -> DynamicFrames:
    return DynamicFrames(DynamicDataset(cfg.data, "train" if split == "train" else "val"))


METHOD = Method(
    name="dynamic",
    description="Dynamic scenes: a street over time from a camera rig -> voxel memory in one anchor frame -> "
    "occupancy and correlation features (3D flow), background subtraction of what moves.",
    config=DynamicConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=DynamicNet,
    build_dataset=build_dataset,
    loss=dynamic_losses,
    evaluate=evaluate_dynamic,
    extra={"markdown_table": results_table},
)
