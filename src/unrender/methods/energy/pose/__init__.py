"""``energy-pose``: 2D -> 3D human pose lifting by unrolled minimisation of a learned energy
(reprojection consistency + a feasibility prior), next to MLP and fit-to-2D baselines."""

from __future__ import annotations

from ...base import Method
from .config import PRESETS, EnergyPoseConfig
from .data import PoseLifting
from .evaluate import evaluate_pose, pose_losses, pose_table
from .model import build_pose_model
from .predict import PosePredictArgs, eval_h36m_files, predict_pose_files


def build_dataset(cfg: EnergyPoseConfig, split: str) -> PoseLifting:
    return PoseLifting(cfg, "train" if split == "train" else "val")


METHOD = Method(
    name="energy-pose",
    description="Learned-energy 3D human pose lifting: 2D joints + intrinsics -> camera-frame 3D joints, by "
    "unrolled gradient steps on a learned energy.",
    config=EnergyPoseConfig,
    presets=PRESETS,
    default_preset="cpu",
    build_model=build_pose_model,
    build_dataset=build_dataset,
    loss=pose_losses,
    evaluate=evaluate_pose,
    extra={
        "markdown_table": pose_table,
        "predict": (PosePredictArgs, predict_pose_files),
        "real_data": {"h36m": eval_h36m_files},
    },
)
