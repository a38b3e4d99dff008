"""``energy-voxels``: single-view voxel reconstruction by unrolled minimisation of a learned energy
that compares voxel columns with image features (concatenation projection), next to a plain
encoder-decoder, on a frustum or a metric grid tied to the camera."""

from __future__ import annotations

from ...base import Method
from .config import PRESETS, EnergyVoxelsConfig
from .data import VoxelViews
from .evaluate import evaluate_voxels, voxel_losses, voxel_table
from .model import build_voxel_model
from .predict import VoxelsPredictArgs, eval_binvox_pairs, predict_voxel_files


def build_dataset(cfg: EnergyVoxelsConfig, split: str) -> VoxelViews:
    return VoxelViews(cfg, "train" if split == "train" else "val")


METHOD = Method(
    name="energy-voxels",
    description="Learned-energy single-view voxel reconstruction: one image + K -> occupancy on a grid tied to the "
    "camera, by unrolled gradient steps on a learned energy.",
    config=EnergyVoxelsConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_voxel_model,
    build_dataset=build_dataset,
    loss=voxel_losses,
    evaluate=evaluate_voxels,
    extra={
        "markdown_table": voxel_table,
        "predict": (VoxelsPredictArgs, predict_voxel_files),
        "real_data": {"binvox-pairs": eval_binvox_pairs},
    },
)
